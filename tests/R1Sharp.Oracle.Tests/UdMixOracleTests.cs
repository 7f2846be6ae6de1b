// A small DeepSeek-R1 file in unsloth's UD-IQ1_S type mix (routed experts in IQ1_S, the first MoE layers' down
// projections in IQ2_XXS, attention and shared experts in Q4_K/Q5_K/Q6_K) on the layout of unsloth's files (one
// attn_kv_b, no MTP layer), shrunk so every row is whole 256-value blocks: it loads and runs in both engines, and the
// logits agree.
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class UdMixOracleTests(ITestOutputHelper output)
{
    private static SynthSpec Spec() => Synthesizer.FindPreset("deepseek2", "deepseek-r1-ud") with
    {
        Name = "r1-ud-small", Dim = 256, Layers = 3, Heads = 2, FfnDim = 512, VocabSize = 0, ContextLength = 256,
        Mla = new() { QLoraRank = 256, KvLoraRank = 256, NopeDim = 64, RopeDim = 32, VDim = 128 },
        Moe = Synthesizer.FindPreset("deepseek2", "deepseek-r1-ud").Moe! with
        {
            Experts = 8, ExpertsUsed = 2, ExpertFfnDim = 256, LeadingDenseLayers = 1, Groups = 4, GroupsUsed = 2,
        },
    };

    /// <summary>
    /// Max |logit diff| to llama.cpp over a 16-token prefill. With one attn_kv_b (no attn_k_b / attn_v_b) llama.cpp
    /// runs the naive form, k = W_kv_b · Q8(c_kv), so ours runs it too: the absorbed form scores q against c_kv itself
    /// and differs by that rounding of the keys (measured 0.1-0.2 from position 1 on, for Q8_0 weights as for this mix;
    /// position 0, one key, agrees). Measured in the naive form, max |diff| by position, ud-iq1_s: 6.0e-7 and 9.5e-7 at
    /// most positions, 3.2e-2 to 4.4e-2 at seven of sixteen; ud-iq1_s-kquants: 1.2e-6 at most, 3.3e-2 at one; q8_0:
    /// 4.8e-7, then 2.0e-2 to 4.3e-2 from position 2. The 1e-2 positions are one activation's rounding to Q8_K / Q8_0
    /// flipping on a last-bit difference of summation order (IqForwardOracleTests, RealFileOracleTests); the tolerance
    /// is RealFileOracleTests': position 0 to float precision, every position to 5% of the logits' range (~4).
    /// </summary>
    [Theory]
    [InlineData("ud-iq1_s")]
    [InlineData("ud-iq1_s-kquants")]
    [InlineData("q8_0")]
    public void UdIq1SFile_LoadsAndRunsLikeLlamaCpp(string mix)
    {
        string dir = Directory.CreateDirectory(Path.Combine(TinyShapes.ScratchDir, "r1sharp-ud")).FullName;
        string path = Path.Combine(dir, $"r1-ud-small-{mix}.gguf");
        Synthesizer.Write(Spec(), WeightMix.Parse(mix), 17, path);
        if (mix == "ud-iq1_s")
        using (var f = GgufFile.Open(path))
        {
            Assert.Equal(GgmlType.IQ2_XXS, f.GetTensor("blk.1.ffn_down_exps.weight").Type);
            Assert.Equal(GgmlType.IQ1_S, f.GetTensor("blk.1.ffn_gate_exps.weight").Type);
            Assert.Equal(GgmlType.Q6_K, f.GetTensor("blk.1.attn_kv_b.weight").Type);
        }
        int[] tokens = TinyShapes.Tokens(path, 16, seed: 2);
        var expected = LlamaCpp.PrefillLogits(path, tokens);
        using var file = GgufFile.Open(path);
        using var pool = new R1Sharp.Kernels.ComputePool(2);
        using var model = new DeepSeek2Model(file, pool, naive: true);
        using var session = new InferenceSession(model, 64, GgmlType.F32);
        var ours = session.Evaluate(tokens, allLogits: true).ToArray();
        int vocab = model.Config.VocabSize;
        var diff = new float[tokens.Length];
        float scale = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < vocab; v++)
            {
                diff[t] = Math.Max(diff[t], Math.Abs(expected[t][v] - ours[t * vocab + v]));
                scale = Math.Max(scale, Math.Abs(expected[t][v]));
            }
        output.WriteLine($"{mix}: {new FileInfo(path).Length / 1024} KiB, max |logit| {scale:F3}, max |diff| by position: " +
                         string.Join(" ", diff.Select(x => x.ToString("0.0E0", System.Globalization.CultureInfo.InvariantCulture))));
        Assert.True(diff[0] <= 1e-5f, $"position 0 max |diff| {diff[0]}");
        Assert.True(diff.Max() <= 0.05f * scale, $"max |diff| {diff.Max()} > 5% of the max |logit| {scale}");
    }
}
