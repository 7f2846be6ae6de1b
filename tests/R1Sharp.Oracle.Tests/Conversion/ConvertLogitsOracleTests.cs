// llama.cpp's logits on the GGUF `convert` writes equal its logits on the GGUF its own converter writes from the
// same checkpoint. testdata/*.logits.json holds llama.cpp's logits (LLamaSharp, F32 KV cache) at every position of a
// short prompt on convert_hf_to_gguf.py's file: the 16 largest, 64 at fixed ids, and the sum and sum of squares of
// all of them.
using System.Text.Json.Nodes;
using R1Sharp.Conversion;
using R1Sharp.Models;
using R1Sharp.Tests.Conversion;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests.Conversion;

public sealed class ConvertLogitsOracleTests(ITestOutputHelper output)
{
    /// <summary>Both files hold the same tensor bytes, so only llama.cpp's own run-to-run variation is allowed.</summary>
    private const double Tolerance = 1e-5;

    [Theory]
    [InlineData("r1-distill-qwen-tiny")]
    [InlineData("r1-distill-llama-tiny")]
    [InlineData("deepseek-v3-tiny")]
    public void LlamaCppLogitsOnOurFileEqualItsLogitsOnItsFile(string fixture)
    {
        var reference = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Conversion", "testdata", $"{fixture}.f16.logits.json")))!;
        int[] tokens = reference["tokens"]!.AsArray().Select(t => (int)t!).ToArray();
        string path = Path.Combine(Path.GetTempPath(), $"r1sharp-convert-logits-{Guid.NewGuid():N}.gguf");
        try
        {
            // llama.cpp does not load DeepSeek's MTP tensors: the layer is left out, as its converter leaves it out
            HfConverter.Convert(HfFixtures.Get(fixture), path, new ConvertOptions(QuantizeTarget.Parse("f16"), Mtp: false));
            var logits = LlamaCpp.PrefillLogits(path, tokens);
            double worst = 0;
            var positions = reference["positions"]!.AsArray();
            Assert.Equal(tokens.Length, positions.Count);
            for (int i = 0; i < tokens.Length; i++)
            {
                var p = positions[i]!;
                float[] l = logits[i];
                foreach (var (ids, values) in new[] { ("top_ids", "top"), ("probe_ids", "probe") })
                {
                    var idList = p[ids]!.AsArray().Select(x => (int)x!).ToArray();
                    var valList = p[values]!.AsArray().Select(x => (double)x!).ToArray();
                    for (int k = 0; k < idList.Length; k++) worst = Math.Max(worst, Math.Abs(l[idList[k]] - valList[k]));
                }
                // the 16 largest are the same ids in the same order (ties aside)
                var top = Enumerable.Range(0, l.Length).OrderByDescending(j => l[j]).Take(16).ToArray();
                var refTop = p["top_ids"]!.AsArray().Select(x => (int)x!).ToArray();
                Assert.Equal(refTop[0], top[0]);
                double sum = l.Sum(x => (double)x), sumsq = l.Sum(x => (double)x * x);
                worst = Math.Max(worst, Math.Abs(sum - (double)p["sum"]!) / l.Length);
                worst = Math.Max(worst, Math.Abs(sumsq - (double)p["sumsq"]!) / Math.Max(1, (double)p["sumsq"]!));
            }
            output.WriteLine($"{fixture}: {tokens.Length} positions, worst |diff| {worst:E2}");
            Assert.True(worst <= Tolerance, $"{fixture}: logits differ by {worst}");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
