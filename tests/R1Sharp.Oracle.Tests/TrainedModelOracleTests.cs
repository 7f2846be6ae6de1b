// The trained default model (models/r1sharp-arith.gguf, written by R1Sharp.Training) in llama.cpp: it loads there
// and its logits on a chat prompt and worked solution match ours.
using R1Sharp.Engine;
using R1Sharp.Tensors;
using R1Sharp.Training;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class TrainedModelOracleTests(ITestOutputHelper output)
{
    private static string DefaultModelPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string p = Path.Combine(dir.FullName, "models", "r1sharp-arith.gguf");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("models/r1sharp-arith.gguf not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void TrainedCheckpointLogitsMatchLlamaCpp()
    {
        string path = DefaultModelPath();
        using var lm = LoadedModel.Load(path, threads: 2);
        int[] tokens = [.. TaskVocab.EncodePrompt(lm.Tokenizer, "What is 12-345?"),
            .. lm.Tokenizer.Encode("12-345\n345-12 b0 =-\n34-1 b0 =-3\n3- b0 =-33\n- b0 =-333\n-333\n</think>\n-333")];
        var expected = LlamaCpp.PrefillLogits(path, tokens);
        using var session = new InferenceSession(lm.Model, 128, GgmlType.F32);
        var ours = session.Evaluate(tokens, allLogits: true).ToArray();
        float diff = 0;
        int v = lm.Config.VocabSize;
        for (int t = 0; t < tokens.Length; t++)
            for (int j = 0; j < v; j++) diff = Math.Max(diff, Math.Abs(expected[t][j] - ours[t * v + j]));
        output.WriteLine($"{tokens.Length} tokens, max |diff| = {diff:E2}");
        Assert.True(diff <= 1e-4f, $"max |diff| {diff}");
    }
}
