// A model split into 3 parts by our split: llama.cpp loads it from the first part with the single file's logits, our
// engine loading any part gives its single-file logits, and the two engines agree on the split as on the single file.
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class SplitOracleTests(ITestOutputHelper output)
{
    private const float F32Tolerance = 1e-4f;

    public static TheoryData<string, GgmlType> Models => new()
    {
        { "qwen2-gqa2", GgmlType.F32 },
        { "llama-gqa3-hd32-oddffn", GgmlType.Q8_0 },
        { "ds2-v3", GgmlType.F32 },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void ThreePartSplit_LlamaCppAndOursGiveTheSingleFilesLogits(string shape, GgmlType type)
    {
        string single = TinyShapes.Write(shape, type);
        IReadOnlyList<string> parts;
        using (var f = GgufFile.Open(single))
        {
            string prefix = Path.Combine(TinyShapes.ScratchDir, $"{shape}-{type}-split");
            parts = GgufSplit.Split(f, prefix, new GgufSplit.Options { MaxTensors = (f.Tensors.Count + 2) / 3 });
        }
        Assert.Equal(3, parts.Count);
        int[] tokens = TinyShapes.Tokens(single, 20, seed: 5);

        var llamaSingle = LlamaCpp.PrefillLogits(single, tokens);
        var llamaSplit = LlamaCpp.PrefillLogits(parts[0], tokens);
        Assert.Equal(llamaSingle.Length, llamaSplit.Length);
        for (int i = 0; i < llamaSingle.Length; i++) Assert.Equal(llamaSingle[i], llamaSplit[i]);

        float[] oursSingle;
        using (var lm = LoadedModel.Load(single, threads: 2, mmap: true))
        using (var session = new InferenceSession(lm.Model, 64, GgmlType.F32))
            oursSingle = session.Evaluate(tokens, allLogits: true).ToArray();
        foreach (string part in parts)
        {
            using var lm = LoadedModel.Load(part, threads: 2, mmap: true);
            Assert.Equal(3, lm.File.Paths.Count);
            using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
            var ours = session.Evaluate(tokens, allLogits: true).ToArray();
            Assert.Equal(oursSingle, ours);
            float diff = 0;
            for (int p = 0; p < tokens.Length; p++)
                for (int v = 0; v < lm.Config.VocabSize; v++)
                    diff = Math.Max(diff, Math.Abs(llamaSplit[p][v] - ours[p * lm.Config.VocabSize + v]));
            output.WriteLine($"{shape} {type}, {Path.GetFileName(part)}: max |diff| against llama.cpp on the split = {diff:E2}");
            // quantized weights: llama.cpp also rounds the activations to its dot type, and a 1e-7 difference in summation
            // order can flip one rounding (QuantizedForwardOracleTests): the split is held to equality with the single
            // file on both engines above, and the engines to each other here in F32
            if (type == GgmlType.F32) Assert.True(diff <= F32Tolerance, $"{shape}: max |diff| {diff} > {F32Tolerance}");
        }
    }
}
