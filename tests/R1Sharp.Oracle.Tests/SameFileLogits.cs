// Our logits against llama.cpp's on one GGUF file: a 16-token prefill (every position) and 8 decode steps after a
// 6-token prefill, the max |diff| of each printed and held to a tolerance, position 0 (no attention sum) to float precision.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

internal static class SameFileLogits
{
    private const float PositionZeroTolerance = 1e-5f;

    public static void AssertMatch(string path, string type, float tolerance, ITestOutputHelper output)
    {
        int[] tokens = TinyShapes.Tokens(path, 16, seed: 9);
        var expectedPrefill = LlamaCpp.PrefillLogits(path, tokens);
        const int prefill = 6;
        var expectedDecode = LlamaCpp.DecodeLogits(path, tokens[..(prefill + 8)], prefill);

        using var lm = LoadedModel.Load(path, threads: 2);
        int vocab = lm.Config.VocabSize;
        float[] ours;
        using (var session = new InferenceSession(lm.Model, 64, GgmlType.F32)) ours = session.Evaluate(tokens, allLogits: true).ToArray();
        var decoded = new List<float>();
        using (var session = new InferenceSession(lm.Model, 64, GgmlType.F32))
        {
            decoded.AddRange(session.Evaluate(tokens.AsSpan(0, prefill)).ToArray());
            for (int i = prefill; i < prefill + 8; i++) decoded.AddRange(session.Evaluate(tokens.AsSpan(i, 1)).ToArray());
        }

        float first = MaxDiff(expectedPrefill[..1], ours.AsSpan(0, vocab).ToArray(), vocab);
        float all = MaxDiff(expectedPrefill, ours, vocab);
        float decode = MaxDiff(expectedDecode, decoded.ToArray(), vocab);
        output.WriteLine($"{type}: position 0 {first:E2}, prefill {all:E2}, decode {decode:E2} (tolerance {tolerance:E1})");
        Assert.True(first <= PositionZeroTolerance, $"{type}: position 0 max |diff| {first} > {PositionZeroTolerance}");
        Assert.True(all <= tolerance, $"{type}: prefill max |diff| {all} > {tolerance}");
        Assert.True(decode <= tolerance, $"{type}: decode max |diff| {decode} > {tolerance}");
    }

    private static float MaxDiff(float[][] expected, float[] ours, int vocab)
    {
        Assert.Equal(expected.Length * vocab, ours.Length);
        float max = 0;
        for (int r = 0; r < expected.Length; r++)
        {
            Assert.Equal(vocab, expected[r].Length);
            for (int i = 0; i < vocab; i++) max = Math.Max(max, Math.Abs(expected[r][i] - ours[r * vocab + i]));
        }
        return max;
    }
}
