// Our forward pass against llama.cpp's on the same quantized file, for every type `quantize` writes: both engines
// quantize activations to the weight type's vec_dot_type (Q8_0, Q8_1, Q8_K) the same way, so the logits agree closely.
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class QuantizedForwardOracleTests(ITestOutputHelper output)
{
    // rows of 256 so every K-quant applies without fallback
    private static readonly SynthSpec s_shape = new()
    {
        Architecture = "qwen2", Name = "kquant", Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 512, ContextLength = 256,
    };

    private static readonly Lazy<string> s_f32 = new(() =>
    {
        string path = Path.Combine(Directory.CreateDirectory(Path.Combine(TinyShapes.ScratchDir, "r1sharp-kquant")).FullName, "f32.gguf");
        Synthesizer.Write(s_shape, GgmlType.F32, 33, path);
        return path;
    });

    /// <summary>
    /// Max |logit diff| to llama.cpp over a 16-token prefill and over 8 decode steps after a 6-token prefill (AVX-512
    /// machine, so our 512-bit kernels for Q4_K/Q5_K/Q6_K and the scalar reference for the others).
    /// Position 0 has no attention sum, so there only summation order differs: it must agree to float precision.
    /// Measured (position 0 / prefill / decode): q4_0 7.2e-7 / 9.5e-7 / 9.5e-7, q4_1 9.5e-7 / 1.2e-6 / 1.2e-6,
    /// q5_0 7.2e-7 / 1.6e-2 / 1.6e-2, q5_1 1.9e-6 / 1.9e-6 / 1.2e-6, q2_k 8.3e-7 / 9.5e-7 / 8.3e-7,
    /// q3_k 8.3e-7 / 9.5e-7 / 9.5e-7, q4_k 4.8e-7 / 1.2e-6 / 1.2e-6, q5_k 9.5e-7 / 9.5e-7 / 9.5e-7,
    /// q6_k 6.1e-7 / 1.2e-6 / 1.2e-6, q4_k_m 8.3e-7 / 1.4e-6 / 1.4e-6, q5_k_m 7.2e-7 / 1.4e-6 / 1.4e-6.
    /// q5_0's later positions show what a 1e-7 difference in summation order does when it flips one activation's
    /// rounding to its dot type (as in ForwardOracleTests for Q8_0): ~1e-2 in the logits. Tolerances are ~2-4x measured.
    /// </summary>
    [Theory]
    [InlineData("q4_0", 4e-6f)]
    [InlineData("q4_1", 4e-6f)]
    [InlineData("q5_0", 3e-2f)]
    [InlineData("q5_1", 4e-6f)]
    [InlineData("q2_k", 4e-6f)]
    [InlineData("q3_k", 4e-6f)]
    [InlineData("q4_k", 4e-6f)]
    [InlineData("q5_k", 4e-6f)]
    [InlineData("q6_k", 4e-6f)]
    [InlineData("q4_k_m", 4e-6f)]
    [InlineData("q5_k_m", 4e-6f)]
    public void LogitsMatchLlamaCppOnTheSameQuantizedFile(string type, float tolerance)
    {
        string path = Path.Combine(Path.GetDirectoryName(s_f32.Value)!, $"{type}.gguf");
        if (!File.Exists(path)) ModelQuantizer.Quantize(s_f32.Value, path, QuantizeTarget.Parse(type));
        SameFileLogits.AssertMatch(path, type, tolerance, output);
    }
}
