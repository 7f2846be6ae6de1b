// Our forward pass against llama.cpp's on the same file for every IQ, ternary and MXFP4 type: a tiny qwen2 model
// quantized with --pure (every matrix, the output head and the embedding included, in the one type), with an importance
// matrix for the types that need one. Both engines quantize the activations to the type's vec_dot_type the same way.
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class IqForwardOracleTests(ITestOutputHelper output)
{
    // rows of 256 so every type applies without fallback
    private static readonly SynthSpec s_shape = new()
    {
        Architecture = "qwen2", Name = "iq", Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 512, ContextLength = 256,
    };

    private static readonly Lazy<string> s_f32 = new(() =>
    {
        string path = Path.Combine(Directory.CreateDirectory(Path.Combine(TinyShapes.ScratchDir, "r1sharp-iq")).FullName, "f32.gguf");
        Synthesizer.Write(s_shape, GgmlType.F32, 35, path);
        return path;
    });

    /// <summary>
    /// An importance matrix with a seeded positive weight per column of every matrix, the embedding and output head
    /// included (the tests need a valid one, not a calibrated one).
    /// </summary>
    internal static ImportanceMatrix RandomImatrix(string modelPath, int seed)
    {
        using var f = GgufFile.Open(modelPath);
        var rng = new Random(seed);
        var entries = new Dictionary<string, ImportanceEntry>();
        foreach (var t in f.Tensors.Where(t => t.Shape.Length >= 2))
        {
            int cols = (int)t.Shape[0], m = t.Shape.Length > 2 ? (int)t.Shape[2] : 1;
            entries[t.Name] = new ImportanceEntry(Enumerable.Range(0, cols * m).Select(_ => (float)(0.1 + 2 * rng.NextDouble())).ToArray(), Enumerable.Repeat(1f, m).ToArray());
        }
        return new ImportanceMatrix(entries, ["random"], 1, 1);
    }

    /// <summary>
    /// Max |logit diff| to llama.cpp over a 16-token prefill and 8 decode steps after a 6-token prefill (AVX-512 machine;
    /// our kernels at this machine's widest level). Position 0 must agree to float precision. Measured (position 0 /
    /// prefill / decode): iq2_xxs 2.4e-7 / 1.4e-6 / 1.4e-6, iq2_xs 7.2e-7 / 9.5e-7 / 9.5e-7, iq2_s 7.2e-7 / 9.5e-7 / 9.5e-7,
    /// iq3_xxs 9.5e-7 / 9.5e-7 / 9.5e-7, iq3_s 2.4e-7 / 9.5e-7 / 7.2e-7, iq1_s 3.6e-7 / 3.3e-2 / 1.2e-6,
    /// iq1_m 4.8e-7 / 9.5e-7 / 9.5e-7, iq4_nl 4.8e-7 / 1.3e-2 / 3.0e-2, iq4_xs 2.4e-7 / 1.2e-6 / 1.2e-6,
    /// tq1_0 and tq2_0 1.4e-6 / 1.4e-6 / 1.4e-6, mxfp4 2.4e-7 / 4.8e-7 / 2.4e-7. IQ4_NL's 1e-2 is one activation whose
    /// rounding to Q8_0 flips on a last-bit difference of summation order (llama.cpp repacks IQ4_NL rows 8 at a time for
    /// its own GEMM and GEMV), as for Q5_0 in QuantizedForwardOracleTests: such a flip moves later logits of these
    /// random-weight models by ~1e-2. IQ1_S's prefill flips the same way: our kernel adds each group's ±1/8 shift into the
    /// block's integer sum (exact) where ggml's AVX2 dot keeps the shift's sum in a float accumulator of its own, so the
    /// floats round differently (decode, the same kernel on one row, agrees to 1.2e-6). (Summed in ggml's generic order, our scalar references flip the same way for
    /// iq1_s at 3.3e-2 and for the ternary types at 7.2e-2.) Tolerances are ~2-4x measured.
    /// </summary>
    [Theory]
    [InlineData("iq2_xxs", 4e-6f)]
    [InlineData("iq2_xs", 4e-6f)]
    [InlineData("iq2_s", 4e-6f)]
    [InlineData("iq3_xxs", 4e-6f)]
    [InlineData("iq3_s", 4e-6f)]
    [InlineData("iq1_s", 8e-2f)]
    [InlineData("iq1_m", 4e-6f)]
    [InlineData("iq4_nl", 8e-2f)]
    [InlineData("iq4_xs", 4e-6f)]
    [InlineData("tq1_0", 4e-6f)]
    [InlineData("tq2_0", 4e-6f)]
    [InlineData("mxfp4_moe", 4e-6f)]
    public void LogitsMatchLlamaCppOnTheSameFile(string type, float tolerance)
    {
        string path = Path.Combine(Path.GetDirectoryName(s_f32.Value)!, $"{type}.gguf");
        var target = QuantizeTarget.Parse(type);
        // mxfp4_moe keeps dense matrices in Q8_0; --pure puts every matrix in MXFP4
        ModelQuantizer.Quantize(s_f32.Value, path, target, new QuantizeOptions { Pure = true, Imatrix = RandomImatrix(s_f32.Value, 3) });
        using (var f = GgufFile.Open(path)) Assert.Equal(target.Type, f.GetTensor("blk.0.ffn_down.weight").Type);
        SameFileLogits.AssertMatch(path, type, tolerance, output);
    }
}
