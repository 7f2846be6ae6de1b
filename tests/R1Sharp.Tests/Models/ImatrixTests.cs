// The imatrix verb and files: what the collector gathers on a tiny model, the GGUF and legacy .dat files read back as
// llama-quantize reads them, and the CLI's one-line errors (too little text, a type that needs an imatrix).
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;
using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.Models;

public sealed class ImatrixTests
{
    private static readonly SynthSpec s_spec = new()
    {
        Architecture = "qwen2", Name = "imatrix", Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 512, ContextLength = 256,
    };

    private static readonly Lazy<string> s_model = new(() =>
    {
        string path = Path.Combine(Path.GetTempPath(), $"r1sharp-imatrix-{Environment.ProcessId}.gguf");
        Synthesizer.Write(s_spec, GgmlType.F32, 5, path);
        return path;
    });

    private static string Text(int words)
    {
        var rng = new Random(3);
        string[] w = ["the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at", "from"];
        return string.Join(' ', Enumerable.Range(0, words).Select(_ => w[rng.Next(w.Length)]));
    }

    private static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"r1sharp-imatrix-{Environment.ProcessId}-{name}");

    [Fact]
    public void CollectsEveryBlockMatrixWithTheTokenCounts()
    {
        using var lm = LoadedModel.Load(s_model.Value, threads: 2);
        var r = ImatrixRun.Compute(lm, Text(2000), "words", ctx: 64, maxChunks: 3);
        Assert.Equal(3, r.Chunks);
        Assert.True(double.IsFinite(r.Perplexity) && r.Perplexity > 1);
        string[] names = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];
        Assert.Equal(Enumerable.Range(0, 2).SelectMany(l => names.Select(n => $"blk.{l}.{n}.weight")).Order(StringComparer.Ordinal),
            r.Matrix.Entries.Keys);
        foreach (var (name, e) in r.Matrix.Entries)
        {
            Assert.Equal([192f], e.Counts);
            Assert.Equal(name.Contains("ffn_down") ? 512 : 256, e.Columns);
            // Σx² ≥ (Σx)²/n column by column, with equality only for constant columns
            for (int j = 0; j < e.Columns; j++) Assert.True(e.SumOfSquares[j] * 192 >= e.Sums![j] * e.Sums[j] * (1 - 1e-4));
        }
        // the same normalized input enters Q, K and V, and gate and up
        Assert.Equal(r.Matrix.Entries["blk.1.attn_q.weight"].SumOfSquares, r.Matrix.Entries["blk.1.attn_v.weight"].SumOfSquares);
        Assert.Equal(r.Matrix.Entries["blk.0.ffn_gate.weight"].SumOfSquares, r.Matrix.Entries["blk.0.ffn_up.weight"].SumOfSquares);
        Assert.NotEqual(r.Matrix.Entries["blk.0.attn_q.weight"].SumOfSquares, r.Matrix.Entries["blk.1.attn_q.weight"].SumOfSquares);
    }

    [Fact]
    public void GgufAndLegacyFilesGiveLlamaQuantizeTheSameImportances()
    {
        using var lm = LoadedModel.Load(s_model.Value, threads: 2);
        var m = ImatrixRun.Compute(lm, Text(2000), "words.txt", ctx: 64, maxChunks: 2).Matrix;
        string gguf = Temp("a.gguf"), dat = Temp("a.dat");
        m.Save(gguf);
        m.SaveLegacy(dat);
        var g = ImportanceMatrix.Load(gguf);
        var d = ImportanceMatrix.Load(dat);
        Assert.Equal(["words.txt"], g.Datasets);
        Assert.Equal(["words.txt"], d.Datasets);
        Assert.Equal((2, 64), (g.ChunkCount, g.ChunkSize));
        Assert.Equal(2, d.ChunkCount);
        using (var f = R1Sharp.Formats.GgufFile.Open(gguf))
        {
            Assert.Equal("imatrix", f.GetString("general.type"));
            var sums = f.GetTensor("blk.0.ffn_down.weight.in_sum2");
            Assert.Equal([512L, 1L], sums.Shape);
            Assert.Equal([1L, 1L], f.GetTensor("blk.0.ffn_down.weight.counts").Shape);
            Assert.Equal([512L, 1L], f.GetTensor("blk.0.ffn_down.weight.in_sum").Shape);
        }
        foreach (var (name, e) in m.Entries)
        {
            Assert.Equal(e.SumOfSquares, g.Entries[name].SumOfSquares);
            Assert.Equal(e.Counts, g.Entries[name].Counts);
            Assert.Equal(e.Sums, g.Entries[name].Sums);
            var want = e.Importance();
            var legacy = d.ImportanceOf(name)!;
            for (int j = 0; j < want.Length; j++) Assert.Equal(want[j], legacy[j], want[j] * 1e-6f);
        }
    }

    [Fact]
    public void CliWritesAnImatrixThatQuantizeTakes()
    {
        string text = Temp("text.txt"), im = Temp("cli.imatrix.gguf"), outPath = Temp("iq2_xxs.gguf");
        File.WriteAllText(text, Text(2000));
        var r = CliRunner.Run("imatrix", "-m", s_model.Value, "-f", text, "-o", im, "--ctx", "64", "--chunks", "2");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("14 matrices over 2 chunks of 64 tokens", r.Stderr);
        Assert.Equal(14, ImportanceMatrix.Load(im).Entries.Count);

        var refused = CliRunner.Run("quantize", s_model.Value, outPath, "--type", "iq2_xxs");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("error: ", refused.Stderr);
        Assert.Single(refused.Stderr.Trim().Split('\n'));
        Assert.Contains("imatrix", refused.Stderr);

        var q = CliRunner.Run("quantize", s_model.Value, outPath, "--type", "iq2_xxs", "--imatrix", im);
        Assert.True(q.ExitCode == 0, q.Stderr);
        using var f = R1Sharp.Formats.GgufFile.Open(outPath);
        Assert.Equal(GgmlType.IQ2_XXS, f.GetTensor("blk.0.ffn_gate.weight").Type);
    }

    [Theory]
    [InlineData("--ctx", "64", "needs at least 128")]
    [InlineData("--ctx", "8", "--ctx must be at least 32")]
    [InlineData("--chunks", "-1", "--chunks must not be negative")]
    [InlineData("--output-format", "bin", "is not gguf or dat")]
    [InlineData("--ctx", "1024", "past the model's context length 256")]
    public void CliRefusesBadInputInOneLine(string option, string value, string message)
    {
        string text = Temp($"short{option}{value}.txt");
        File.WriteAllText(text, option == "--ctx" && value == "64" ? Text(40) : Text(2000));
        string[] args = ["imatrix", "-m", s_model.Value, "-f", text, "-o", Temp("bad.gguf"), option, value];
        var r = CliRunner.Run(option == "--ctx" ? args : [.. args, "--ctx", "64"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains(message, r.Stderr);
    }
}
