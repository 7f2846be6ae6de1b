// The per-tensor types of every llama.cpp file type held to llama.cpp's own quantizer: the same F32 file quantized by
// llama_model_quantize and by ModelQuantizer, with and without an importance matrix, on shapes that reach the rules'
// branches (GQA 2 and 4, tied output, rows that are not whole blocks, a MoE with 8 experts and attn_kv_b). Where
// llama.cpp refuses for want of an imatrix, so must we.
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class QuantizeMixOracleTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, SynthSpec> s_shapes = new()
    {
        ["qwen2-gqa2"] = new()
        {
            Architecture = "qwen2", Name = "mix", Dim = 256, Layers = 8, Heads = 4, KvHeads = 2, FfnDim = 512, ContextLength = 256,
        },
        ["llama-gqa4-tied-oddffn"] = new()
        {
            Architecture = "llama", Name = "mix", Dim = 256, Layers = 8, Heads = 8, KvHeads = 2, FfnDim = 384, ContextLength = 256,
            TiedOutput = true, NormEps = 1e-5f, RopeTheta = 500000f,
        },
        ["ds2-8experts"] = Synthesizer.FindPreset("deepseek2", "tiny-v3-legacy") with { Dim = 256, ContextLength = 256 },
    };

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> s_files = new();

    private static string F32(string shape) => s_files.GetOrAdd(shape, s =>
    {
        string path = Path.Combine(Directory.CreateDirectory(Path.Combine(TinyShapes.ScratchDir, "r1sharp-mix")).FullName, s + ".gguf");
        Synthesizer.Write(s_shapes[s], GgmlType.F32, 41, path);
        return path;
    });

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (string shape in s_shapes.Keys)
            foreach (var t in QuantizeTarget.All.Where(t => !t.Plain && t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)))
                data.Add(shape, t.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TensorTypesMatchLlamaCpp(string shape, string type)
    {
        string input = F32(shape);
        var target = QuantizeTarget.Parse(type);
        var imatrix = IqForwardOracleTests.RandomImatrix(input, 5);
        // llama-quantize's imatrix files hold the blk.* matrices (not the embedding or the output head)
        var blocks = new ImportanceMatrix(imatrix.Entries.Where(e => e.Key.StartsWith("blk.", StringComparison.Ordinal)).ToDictionary(),
            imatrix.Datasets, 1, 1);
        string dir = Path.GetDirectoryName(input)!;
        foreach (var (withImatrix, im) in new[] { (false, (ImportanceMatrix?)null), (true, blocks) })
        {
            string theirs = Path.Combine(dir, $"{shape}-{type}-{withImatrix}-llama.gguf"), ours = Path.Combine(dir, $"{shape}-{type}-{withImatrix}-ours.gguf");
            bool theyQuantized = LlamaQuantize.Quantize(input, theirs, target.FileType,
                im?.Entries.ToDictionary(e => e.Key, e => e.Value.Importance()));
            Exception? ourError = Record.Exception(() => ModelQuantizer.Quantize(input, ours, target, new QuantizeOptions { Imatrix = im }));
            output.WriteLine($"{shape} {type} imatrix={withImatrix}: llama.cpp {(theyQuantized ? "quantized" : "refused")}, ours {(ourError is null ? "quantized" : "refused: " + ourError.Message)}");
            Assert.Equal(theyQuantized, ourError is null);
            if (!theyQuantized) continue;
            using var a = GgufFile.Open(theirs);
            using var b = GgufFile.Open(ours);
            Assert.Equal(a.Tensors.Count, b.Tensors.Count);
            int same = 0, quantized = 0;
            foreach (var t in a.Tensors)
            {
                var u = b.GetTensor(t.Name);
                Assert.True(t.Type == u.Type, $"{shape} {type} imatrix={withImatrix}: {t.Name} is {t.Type} in llama.cpp's file, {u.Type} in ours");
                if (t.Type == GgmlType.F32) continue;
                quantized++;
                if (a.TensorBytes(t).SequenceEqual(b.TensorBytes(u))) same++;
            }
            output.WriteLine($"  {a.Tensors.Count} tensors, types equal; {same} of {quantized} quantized tensors byte for byte equal");
            Assert.Equal(target.FileType, (int)(b.GetInt("general.file_type") ?? -1));
        }
    }
}
