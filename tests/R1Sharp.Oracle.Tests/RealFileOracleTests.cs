// The small files that reproduce real R1 GGUFs (tests/RealFiles: the logs' keys, the real tokenizer arrays, the
// real layout's names and Q4_K_M type mix) against llama.cpp: the same token ids, and the same logits.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.RealFiles;
using R1Sharp.Tensors;
using R1Sharp.Tokenization;
using LLama;
using LLama.Native;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class RealFileOracleTests(ITestOutputHelper output)
{
    public static TheoryData<string> Files => new(RealFile.All.Keys);

    private static readonly string[] s_texts =
    [
        "<｜begin▁of▁sentence｜><｜User｜>What is 17+25? Please reason step by step, and put your final answer within \\boxed{}.<｜Assistant｜><think>\n",
        "Hello world! 12345 ünïcödé 深度求索 🤖 <think>x</think>\n\n  tabs\tand spaces",
    ];

    [Theory]
    [MemberData(nameof(Files))]
    public void LlamaCppTokenizesLikeUs(string name)
    {
        var f = RealFile.All[name];
        string path = f.WriteSmall(TinyShapes.ScratchDir);
        using var lm = LoadedModel.Load(path, threads: 2, mmap: true);
        var p = LlamaCpp.Params(path, 64);
        p.VocabOnly = true;
        using var weights = LLamaWeights.LoadFromFile(p);
        foreach (string text in s_texts)
        {
            int[] theirs = [.. weights.Tokenize(text, false, true, System.Text.Encoding.UTF8).Select(t => (int)t)];
            Assert.Equal(theirs, lm.Tokenizer.Encode(text));
        }
    }

    /// <summary>Logits of every position of a prefill of the R1 prompt, ours and llama.cpp's, and their max |diff| per position.</summary>
    private (float[] PerPosition, float MaxLogit) Compare(string path, string what)
    {
        using var lm = LoadedModel.Load(path, threads: 2, mmap: true);
        int[] tokens = lm.Tokenizer.Encode(s_texts[0]);
        var expected = LlamaCpp.PrefillLogits(path, tokens);
        using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
        var ours = session.Evaluate(tokens, allLogits: true).ToArray();
        int vocab = lm.Config.VocabSize;
        var diff = new float[tokens.Length];
        float scale = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < vocab; v++)
            {
                diff[t] = Math.Max(diff[t], Math.Abs(expected[t][v] - ours[t * vocab + v]));
                scale = Math.Max(scale, Math.Abs(expected[t][v]));
            }
        output.WriteLine($"{what}: {tokens.Length} tokens, vocabulary {vocab}, max |logit| {scale:F3}, max |diff| by position: " +
                         string.Join(" ", diff.Select(x => x.ToString("0.0E0", System.Globalization.CultureInfo.InvariantCulture))));
        return (diff, scale);
    }

    /// <summary>The file with F32 matrices: neither engine rounds activations, so every position agrees as the F32 tiny shapes do.</summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void F32Variant_LogitsMatchLlamaCppAtEveryPosition(string name)
    {
        var f = RealFile.All[name];
        var (diff, _) = Compare(f.WriteSmall(TinyShapes.ScratchDir, WeightMix.Of(GgmlType.F32)), $"{name} F32");
        Assert.True(diff.Max() <= 1e-4f, $"{name} F32: max |diff| {diff.Max()} > 1e-4");
    }

    /// <summary>
    /// The Q4_K_M file itself: both engines round activations to Q8_K for the K-quant products, so they agree to float
    /// precision until a difference in summation order (of the dots' floats or of the attention) moves one activation
    /// across a rounding step (QuantizedForwardOracleTests); over 28-32 layers that happens within a few positions,
    /// after which the logits differ by up to ~0.1 of a range of ~4 (measured: 5e-2 to 1.1e-1). The first position
    /// must agree to float precision; every position must agree to a small fraction of the logits' range.
    /// </summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void LogitsMatchLlamaCpp(string name)
    {
        var f = RealFile.All[name];
        var (diff, scale) = Compare(f.WriteSmall(TinyShapes.ScratchDir), name);
        Assert.True(diff[0] <= 1e-5f, $"{name}: position 0 max |diff| {diff[0]} > 1e-5");
        Assert.True(diff.Max() <= 0.05f * scale, $"{name}: max |diff| {diff.Max()} > 5% of the max |logit| {scale}");
    }
}
