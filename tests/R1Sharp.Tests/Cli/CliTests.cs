using System.Text.Json;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Cli;

public sealed class CliTests : IClassFixture<CliTests.TinyModel>
{
    public sealed class TinyModel : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("r1sharp-cli-").FullName;
        public string Path { get; }

        public TinyModel()
        {
            Path = System.IO.Path.Combine(Dir, "tiny.gguf");
            Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 5, Path);
        }

        public void Dispose() => Directory.Delete(Dir, true);
    }

    private readonly TinyModel _tiny;

    public CliTests(TinyModel tiny) => _tiny = tiny;

    private static void AssertCleanError(CliRunner.Result r)
    {
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    public static TheoryData<string> BadFiles => new() { "missing", "empty", "garbage", "truncated", "no-tensors" };

    private string MakeBadFile(string kind)
    {
        string path = Path.Combine(_tiny.Dir, $"bad-{kind}.gguf");
        var good = File.ReadAllBytes(_tiny.Path);
        switch (kind)
        {
            case "missing": return Path.Combine(_tiny.Dir, "does-not-exist.gguf");
            case "empty": File.WriteAllBytes(path, []); break;
            case "garbage": File.WriteAllBytes(path, Enumerable.Range(0, 4096).Select(i => (byte)(i * 31 + 7)).ToArray()); break;
            case "truncated": File.WriteAllBytes(path, good.AsSpan(0, good.Length / 2).ToArray()); break;
            case "no-tensors":
                var w = new R1Sharp.Formats.GgufWriter();
                w.SetMetadata("general.architecture", R1Sharp.Formats.GgufValue.Of("qwen2"));
                w.Write(path);
                break;
        }
        return path;
    }

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void LogitsOnABadFileIsOneLineAndNonZero(string kind)
    {
        AssertCleanError(CliRunner.Run("logits", "--model", MakeBadFile(kind), "--tokens", "1,2"));
    }

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void GenerateOnABadFileIsOneLineAndNonZero(string kind)
    {
        AssertCleanError(CliRunner.Run("generate", "--model", MakeBadFile(kind), "--prompt", "hi", "--raw"));
    }

    [Fact]
    public void BadArgumentsAreOneLineErrors()
    {
        AssertCleanError(CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "1,x"));
        AssertCleanError(CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "99999999"));
        AssertCleanError(CliRunner.Run("generate", "--model", _tiny.Path, "--prompt", "hi", "--top-p", "2"));
        AssertCleanError(CliRunner.Run("synth", "--arch", "gpt9", "--out", Path.Combine(_tiny.Dir, "x.gguf")));
        AssertCleanError(CliRunner.Run("serve", "--model", Path.Combine(_tiny.Dir, "missing.gguf")));
        AssertCleanError(CliRunner.Run("serve", "--model", _tiny.Path, "--host", "not-an-ip", "--port", "0"));
        AssertCleanError(CliRunner.Run("serve", "--model", _tiny.Path, "--parallel", "0", "--port", "0"));
        AssertCleanError(CliRunner.Run("serve", "--model", _tiny.Path, "--prefill-chunk", "0", "--port", "0"));
    }

    [Fact]
    public void LogitsPrintsJsonForTheLastOrEveryPosition()
    {
        var last = CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6,7");
        Assert.Equal(0, last.ExitCode);
        using var doc = JsonDocument.Parse(last.Stdout);
        int vocab = doc.RootElement.GetProperty("n_vocab").GetInt32();
        var rows = doc.RootElement.GetProperty("logits");
        Assert.Equal(1, rows.GetArrayLength());
        Assert.Equal(vocab, rows[0].GetArrayLength());

        var all = CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6,7", "--all");
        using var docAll = JsonDocument.Parse(all.Stdout);
        var allRows = docAll.RootElement.GetProperty("logits");
        Assert.Equal(3, allRows.GetArrayLength());
        // the last row of --all is the row printed without it
        for (int i = 0; i < vocab; i++) Assert.Equal(rows[0][i].GetSingle(), allRows[2][i].GetSingle());

        // weights left in the file mapping give the same logits as the huge-page copy
        var mapped = CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6,7", "--mmap");
        Assert.Equal(0, mapped.ExitCode);
        using var docMapped = JsonDocument.Parse(mapped.Stdout);
        var mappedRow = docMapped.RootElement.GetProperty("logits")[0];
        for (int i = 0; i < vocab; i++) Assert.Equal(rows[0][i].GetSingle(), mappedRow[i].GetSingle());
    }

    [Fact]
    public void CacheTypeF16GivesNearbyLogitsAndOtherTypesAreRefused()
    {
        var f32 = CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6,7,8,9");
        var f16 = CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6,7,8,9", "--cache-type", "f16");
        Assert.Equal(0, f16.ExitCode);
        using var a = JsonDocument.Parse(f32.Stdout);
        using var b = JsonDocument.Parse(f16.Stdout);
        var ra = a.RootElement.GetProperty("logits")[0];
        var rb = b.RootElement.GetProperty("logits")[0];
        float max = 0;
        bool differ = false;
        for (int i = 0; i < ra.GetArrayLength(); i++)
        {
            float d = Math.Abs(ra[i].GetSingle() - rb[i].GetSingle());
            max = Math.Max(max, d);
            differ |= d > 0;
        }
        Assert.True(differ, "an F16 cache rounds K and V: some logit should move");
        Assert.True(max < 1e-2f, $"max |f32 - f16| = {max}");
        AssertCleanError(CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6", "--cache-type", "q4_0"));
        AssertCleanError(CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6", "--cache-type-v", "bf16"));
        // the tiny model's head rows (16 values) are not whole Q8_0 blocks: refused by name
        var q8 = CliRunner.Run("logits", "--model", _tiny.Path, "--tokens", "5,6", "-ctk", "q8_0");
        AssertCleanError(q8);
        Assert.Contains("whole blocks of 32", q8.Stderr);
    }

    [Fact]
    public void GenerateIsReproducibleForASeed()
    {
        string[] args = ["generate", "--model", _tiny.Path, "--prompt", "hello", "--max-tokens", "12", "--seed", "3", "--temperature", "1"];
        var a = CliRunner.Run(args);
        var b = CliRunner.Run(args);
        Assert.Equal(0, a.ExitCode);
        Assert.Equal(a.Stdout, b.Stdout);
        Assert.False(string.IsNullOrWhiteSpace(a.Stdout));
    }

    [Fact]
    public void BenchJsonHasTheFigures()
    {
        var r = CliRunner.Run("bench", "--model", _tiny.Path, "-p", "16", "-n", "4", "-t", "1", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.True(doc.RootElement.GetProperty("prefill_tok_s").GetDouble() > 0);
        Assert.True(doc.RootElement.GetProperty("decode_tok_s").GetDouble() > 0);
        Assert.Equal(1, doc.RootElement.GetProperty("threads").GetInt32());
        Assert.Equal(new FileInfo(_tiny.Path).Length, doc.RootElement.GetProperty("model_bytes").GetInt64());
    }

    [Fact]
    public void InfoOnTheDeepSeekR1PresetGivesItsKnownSize()
    {
        var r = CliRunner.Run("info", "--arch", "deepseek2", "--preset", "deepseek-r1", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        // DeepSeek-V3/R1: 671B total, 37B activated per token; MLA caches 61 x (512 + 64) values per token
        Assert.InRange(root.GetProperty("parameters").GetInt64(), 665_000_000_000, 677_000_000_000);
        Assert.InRange(root.GetProperty("active_parameters").GetInt64(), 36_000_000_000, 39_000_000_000);
        Assert.Equal(61 * 576 * 2, root.GetProperty("kv_bytes_per_token_f16").GetInt64());
        Assert.Equal(61 * 576 / 32 * 34, root.GetProperty("kv_bytes_per_token_q8_0").GetInt64()); // 18 Q8_0 blocks of 34 bytes per layer
        long context = root.GetProperty("context").GetInt64(), weights = root.GetProperty("weight_bytes").GetInt64();
        Assert.Equal(weights + context * 61 * 576 / 32 * 34, root.GetProperty("memory_bytes_q8_0_kv").GetInt64());
        Assert.Equal(weights + context * 61 * 576 * 2, root.GetProperty("memory_bytes_f16_kv").GetInt64());
    }

    [Fact]
    public void InfoOnAFileCountsItsTensors()
    {
        var r = CliRunner.Run("info", "--model", _tiny.Path, "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        using var file = R1Sharp.Formats.GgufFile.Open(_tiny.Path);
        Assert.Equal(file.Tensors.Sum(t => t.ElementCount), doc.RootElement.GetProperty("parameters").GetInt64());
        Assert.Equal(doc.RootElement.GetProperty("parameters").GetInt64(), doc.RootElement.GetProperty("active_parameters").GetInt64());
        AssertCleanError(CliRunner.Run("info"));
    }
}
