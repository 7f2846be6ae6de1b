// Files written by `quantize` load in llama.cpp and mean the same model: llama.cpp's logits on the quantized file
// stay close to its logits on the F32 original (a misplaced scale or nibble would scramble them).
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class QuantizeOracleTests(ITestOutputHelper output)
{
    // rows of 256 so every K-quant applies without fallback
    private static readonly SynthSpec s_shape = new()
    {
        Architecture = "qwen2", Name = "quant", Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 512, ContextLength = 256,
    };

    private static readonly Lazy<string> s_f32 = new(() =>
    {
        string path = Path.Combine(Directory.CreateDirectory(Path.Combine(TinyShapes.ScratchDir, "r1sharp-quant")).FullName, "f32.gguf");
        Synthesizer.Write(s_shape, GgmlType.F32, 21, path);
        return path;
    });

    /// <summary>
    /// Max |logit diff| to the F32 model over a 16-token prefill (vocabulary 663, two layers of random weights, which
    /// amplify weight noise). Measured: q8_0 0.072, f16 0.0038, bf16 0.025, q4_0 0.83, q4_1 0.74, q5_0 0.40,
    /// q5_1 0.42, q2_k 2.4, q3_k 1.5, q4_k 0.76, q5_k 0.38, q6_k 0.21, q4_k_m 0.73, q5_k_m 0.36: the error halves with
    /// each bit, as it should. Bounds are 1.5x these.
    /// </summary>
    [Theory]
    [InlineData("q8_0", 0.11f)]
    [InlineData("f16", 0.006f)]
    [InlineData("bf16", 0.04f)]
    [InlineData("q4_0", 1.25f)]
    [InlineData("q4_1", 1.1f)]
    [InlineData("q5_0", 0.6f)]
    [InlineData("q5_1", 0.63f)]
    [InlineData("q2_k", 3.6f)]
    [InlineData("q3_k", 2.3f)]
    [InlineData("q4_k", 1.13f)]
    [InlineData("q5_k", 0.57f)]
    [InlineData("q6_k", 0.32f)]
    [InlineData("q4_k_m", 1.1f)]
    [InlineData("q5_k_m", 0.55f)]
    public void QuantizedFilesLoadInLlamaCppAndKeepTheModel(string type, float bound)
    {
        string outPath = Path.Combine(Path.GetDirectoryName(s_f32.Value)!, $"{type}.gguf");
        ModelQuantizer.Quantize(s_f32.Value, outPath, QuantizeTarget.Parse(type));
        int[] tokens = TinyShapes.Tokens(s_f32.Value, 16, seed: 8);
        var reference = LlamaCpp.PrefillLogits(s_f32.Value, tokens);
        var quantized = LlamaCpp.PrefillLogits(outPath, tokens);
        float max = 0;
        for (int r = 0; r < reference.Length; r++)
            for (int i = 0; i < reference[r].Length; i++) max = Math.Max(max, Math.Abs(reference[r][i] - quantized[r][i]));
        output.WriteLine($"{type}: {new FileInfo(outPath).Length} bytes, max |diff| to F32 = {max:E2}");
        Assert.True(max <= bound, $"{type}: max |diff| {max} > {bound}");
        Assert.True(max > 0 || type == "f32", "quantization changed nothing");
    }

    [Fact]
    public void Q4KMGivesOutputAttnVAndFfnDownMoreBitsAsLlamaCppDoes()
    {
        string outPath = Path.Combine(Path.GetDirectoryName(s_f32.Value)!, "mix.gguf");
        ModelQuantizer.Quantize(s_f32.Value, outPath, QuantizeTarget.Parse("q4_k_m"));
        using var f = GgufFile.Open(outPath);
        Assert.Equal(GgmlType.Q6_K, f.GetTensor("output.weight").Type);
        Assert.Equal(GgmlType.Q4_K, f.GetTensor("token_embd.weight").Type);
        // 2 layers: use_more_bits(0, 2) and use_more_bits(1, 2) hold (i >= 7n/8 = 1, and i < n/8 = 0 fails for 0 but (0 - 0) % 3 != 2...)
        for (int l = 0; l < 2; l++)
        {
            var expected = ModelQuantizer.UseMoreBits(l, 2) ? GgmlType.Q6_K : GgmlType.Q4_K;
            Assert.Equal(expected, f.GetTensor($"blk.{l}.attn_v.weight").Type);
            Assert.Equal(expected, f.GetTensor($"blk.{l}.ffn_down.weight").Type);
            Assert.Equal(GgmlType.Q4_K, f.GetTensor($"blk.{l}.attn_q.weight").Type);
            Assert.Equal(GgmlType.F32, f.GetTensor($"blk.{l}.attn_norm.weight").Type);
        }
        Assert.True(ModelQuantizer.UseMoreBits(0, 28) && ModelQuantizer.UseMoreBits(27, 28) && !ModelQuantizer.UseMoreBits(4, 28) && ModelQuantizer.UseMoreBits(5, 28));
    }
}
