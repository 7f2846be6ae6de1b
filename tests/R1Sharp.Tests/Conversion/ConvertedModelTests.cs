// The engine runs what `convert` writes: its logits on each converted fixture match llama.cpp's logits on llama.cpp's
// converter's file (tests/R1Sharp.Oracle.Tests/Conversion/testdata, the 16 largest at every position), the
// DeepSeek file with its MTP layer kept gives the same logits as the one without (the main pass does not run it), and
// that layer (its own embed_tokens and shared_head.head included) drafts for speculative decoding without changing
// greedy output.
using System.Text.Json.Nodes;
using R1Sharp.Conversion;
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Conversion;

public sealed class ConvertedModelTests(ITestOutputHelper output)
{
    /// <summary>Two engines on the same F16 weights; ggml rounds activations to F16 in its F16 matrix products, so
    /// the engines differ by more than on F32 weights: 9.7e-4 measured at most over the three fixtures, 2x headroom.</summary>
    private const double Tolerance = 2e-3;

    private static float[][] Logits(string path, int[] tokens)
    {
        using var lm = LoadedModel.Load(path, threads: 2);
        using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
        var all = session.Evaluate(tokens, allLogits: true).ToArray();
        int v = lm.Config.VocabSize;
        return Enumerable.Range(0, tokens.Length).Select(i => all[(i * v)..((i + 1) * v)]).ToArray();
    }

    private static string Convert(string fixture, bool mtp)
    {
        string path = Path.Combine(Path.GetTempPath(), $"r1sharp-converted-{Guid.NewGuid():N}.gguf");
        HfConverter.Convert(HfFixtures.Get(fixture), path, new ConvertOptions(QuantizeTarget.Parse("f16"), Mtp: mtp));
        return path;
    }

    [Theory]
    [InlineData("r1-distill-qwen-tiny")]
    [InlineData("r1-distill-llama-tiny")]
    [InlineData("deepseek-v3-tiny")]
    public void EngineLogitsOnConvertedFileMatchLlamaCpp(string fixture)
    {
        var reference = JsonNode.Parse(File.ReadAllText(RepoPaths.Get($"tests/R1Sharp.Oracle.Tests/Conversion/testdata/{fixture}.f16.logits.json")))!;
        int[] tokens = reference["tokens"]!.AsArray().Select(t => (int)t!).ToArray();
        string path = Convert(fixture, mtp: true);
        try
        {
            var ours = Logits(path, tokens);
            double worst = 0;
            var positions = reference["positions"]!.AsArray();
            for (int i = 0; i < tokens.Length; i++)
            {
                var ids = positions[i]!["top_ids"]!.AsArray().Select(x => (int)x!).ToArray();
                var vals = positions[i]!["top"]!.AsArray().Select(x => (double)x!).ToArray();
                for (int k = 0; k < ids.Length; k++) worst = Math.Max(worst, Math.Abs(ours[i][ids[k]] - vals[k]));
            }
            output.WriteLine($"{fixture}: worst |diff| against llama.cpp {worst:E2}");
            Assert.True(worst <= Tolerance, $"{fixture}: {worst}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void KeptMtpLayerDoesNotChangeTheLogits()
    {
        string with = Convert("deepseek-v3-tiny", mtp: true), without = Convert("deepseek-v3-tiny", mtp: false);
        try
        {
            int[] tokens = [0, 3085, 344, 223, 1002];
            var a = Logits(with, tokens);
            var b = Logits(without, tokens);
            for (int i = 0; i < tokens.Length; i++) Assert.Equal(b[i], a[i]);
        }
        finally
        {
            File.Delete(with);
            File.Delete(without);
        }
    }

    [Fact]
    public async Task KeptMtpLayerDraftsWithoutChangingGreedyOutput()
    {
        string path = Convert("deepseek-v3-tiny", mtp: true);
        try
        {
            using var lm = LoadedModel.Load(path, threads: 2);
            Assert.NotNull(lm.Model.Mtp);
            var requests = Enumerable.Range(0, 4).Select(i => new EngineRequest
            {
                Prompt = [0, 3085 + i, 344, 223, 1002, 3085 + i, 344], MaxTokens = 24, IgnoreEos = true, Sampling = R1Sharp.Sampling.SamplingParams.Greedy,
            }).ToList();
            async Task<(List<string> Texts, long Drafted)> Run(SpeculationOptions? spec)
            {
                using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 4, ContextSize = 64, Speculation = spec });
                var texts = await Task.WhenAll(requests.Select(async r =>
                {
                    var sb = new System.Text.StringBuilder();
                    await foreach (var c in s.Submit(r)) sb.Append(c.Text);
                    return sb.ToString();
                }));
                return ([.. texts], s.DraftTokens);
            }
            var plain = await Run(null);
            using var source = new MtpSource(lm.Model, lm.Tokenizer.EndOfGeneration, pMin: 0);
            var spec = await Run(new SpeculationOptions { Source = source, MinAcceptRate = 0 });
            Assert.Equal(plain.Texts, spec.Texts);
            Assert.True(spec.Drafted > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
