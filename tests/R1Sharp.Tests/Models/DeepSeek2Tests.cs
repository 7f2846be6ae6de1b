// deepseek2 against itself: the absorbed MLA form the engine runs equals the naive form (per-head K and V),
// its cache holds only the latent and the shared RoPE key, and the router picks experts as specified.
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Models;

public sealed class DeepSeek2Tests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-ds2-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static SynthSpec Variant(bool qLora, bool split, ExpertGating gating, int groups) =>
        Synthesizer.FindPreset("deepseek2", "tiny") with
        {
            Layers = 3,
            SplitKvB = split,
            Mla = new() { QLoraRank = qLora ? 32 : 0, KvLoraRank = 32, NopeDim = 32, RopeDim = 16, VDim = 32 },
            Moe = new()
            {
                Experts = 8, ExpertsUsed = 2, SharedExperts = 1, ExpertFfnDim = 32, LeadingDenseLayers = 1, Gating = gating,
                NormalizeWeights = gating == ExpertGating.Sigmoid, WeightsScale = 2.5f, Groups = groups, GroupsUsed = Math.Max(1, groups / 2),
            },
        };

    public static TheoryData<bool, bool, ExpertGating, int> Variants => new()
    {
        { true, true, ExpertGating.Sigmoid, 4 },
        { true, false, ExpertGating.Sigmoid, 1 },
        { false, true, ExpertGating.Softmax, 1 },
        { false, false, ExpertGating.Softmax, 2 },
    };

    /// <summary>The two MLA forms differ only in summation order.</summary>
    private const float AbsorbedVsNaive = 1e-5f;

    [Theory]
    [MemberData(nameof(Variants))]
    public void AbsorbedMlaEqualsNaiveMla(bool qLora, bool split, ExpertGating gating, int groups)
    {
        string path = Path.Combine(_dir, $"ds2-{qLora}-{split}-{gating}-{groups}.gguf");
        Synthesizer.Write(Variant(qLora, split, gating, groups), GgmlType.F32, 3, path);
        using var file = GgufFile.Open(path);
        using var pool = new ComputePool(2);
        using var absorbed = new DeepSeek2Model(file, pool);
        using var naive = new DeepSeek2Model(file, pool, naive: true);
        int[] tokens = Enumerable.Range(0, 30).Select(i => (i * 53 + 7) % 250 + 1).ToArray();

        float max = 0;
        // F32 caches: the two forms cache different values, which F16 would round differently
        using var sa = new InferenceSession(absorbed, 40, GgmlType.F32);
        using var sn = new InferenceSession(naive, 40, GgmlType.F32);
        // a prompt pass, then token-by-token decode over the cache
        var pa = sa.Evaluate(tokens.AsSpan(0, 20), allLogits: true).ToArray();
        var pn = sn.Evaluate(tokens.AsSpan(0, 20), allLogits: true).ToArray();
        for (int i = 0; i < pa.Length; i++) max = Math.Max(max, Math.Abs(pa[i] - pn[i]));
        for (int i = 20; i < tokens.Length; i++)
        {
            var da = sa.Evaluate(tokens.AsSpan(i, 1)).ToArray();
            var dn = sn.Evaluate(tokens.AsSpan(i, 1)).ToArray();
            for (int j = 0; j < da.Length; j++) max = Math.Max(max, Math.Abs(da[j] - dn[j]));
        }
        Assert.True(max <= AbsorbedVsNaive, $"absorbed vs naive max |diff| {max} > {AbsorbedVsNaive}");
    }

    // the MTP head's block (MLA and MoE on its own cache) in the absorbed form equals the naive one, positions in one
    // pass and then one at a time, from the same hidden states of the main model
    [Fact]
    public void MtpHeadAbsorbedEqualsNaive()
    {
        string path = Path.Combine(_dir, "ds2-mtp.gguf");
        Synthesizer.Write(Synthesizer.FindPreset("deepseek2", "tiny-mtp"), GgmlType.F32, 5, path);
        using var file = GgufFile.Open(path);
        using var pool = new ComputePool(2);
        using var absorbed = new DeepSeek2Model(file, pool);
        using var naive = new DeepSeek2Model(file, pool, naive: true);
        int dim = absorbed.Config.Dim, vocab = absorbed.Config.VocabSize, n = 12;
        int[] tokens = Enumerable.Range(0, n + 3).Select(i => (i * 41 + 11) % 250 + 1).ToArray();
        var hidden = new float[(n + 2) * dim];
        using (var s = new InferenceSession(absorbed, 32, GgmlType.F32)) s.Evaluate(tokens.AsSpan(0, n + 2), 1, hidden);

        float max = 0;
        var outputs = new List<float[]>();
        foreach (var model in new[] { absorbed, naive })
        {
            var head = model.Mtp!;
            using var cache = head.CreateCache(1, 32);
            var batch = new Batch();
            for (int i = 0; i < n; i++) batch.Add(tokens[i + 1], i, 0, true);
            var logits = new float[(n + 2) * vocab];
            var output = new float[(n + 2) * dim];
            head.Forward(batch, hidden, cache, logits.AsSpan(0, n * vocab), output);
            for (int i = n; i < n + 2; i++)
            {
                batch.Clear();
                batch.Add(tokens[i + 1], i, 0, true);
                head.Forward(batch, hidden.AsSpan(i * dim, dim), cache, logits.AsSpan(i * vocab, vocab), output.AsSpan(i * dim, dim));
            }
            outputs.Add([.. logits, .. output]);
        }
        for (int i = 0; i < outputs[0].Length; i++) max = Math.Max(max, Math.Abs(outputs[0][i] - outputs[1][i]));
        Assert.True(max <= AbsorbedVsNaive, $"absorbed vs naive MTP max |diff| {max} > {AbsorbedVsNaive}");
        Assert.Contains(outputs[0], v => v != 0);
    }

    [Fact]
    public void AbsorbedCacheHoldsLatentPlusRopeKeyPerTokenAndLayer()
    {
        string path = Path.Combine(_dir, "cache.gguf");
        var spec = Variant(true, true, ExpertGating.Sigmoid, 4);
        Synthesizer.Write(spec, GgmlType.F32, 3, path);
        using var file = GgufFile.Open(path);
        using var pool = new ComputePool(1);
        using var model = new DeepSeek2Model(file, pool);
        using var cache = model.CreateCache(1, 100);
        Assert.Equal(spec.Mla!.KvLoraRank + spec.Mla.RopeDim, cache.KDim + cache.VDim);
        Assert.Equal(GgmlType.F32, cache.KType);
        Assert.Equal((long)spec.Layers * 100 * (spec.Mla.KvLoraRank + spec.Mla.RopeDim) * sizeof(float), cache.TotalBytes);
        using var f16 = model.CreateCache(1, 100, GgmlType.F16);
        Assert.Equal(cache.TotalBytes, 2 * f16.TotalBytes);

        using var naive = new DeepSeek2Model(file, pool, naive: true);
        using var naiveCache = naive.CreateCache(1, 100);
        Assert.Equal(spec.Heads * (spec.Mla.QkHeadDim + spec.Mla.VDim), naiveCache.KDim + naiveCache.VDim);
    }

    [Fact]
    public unsafe void RouterSelectsWithBiasButWeighsWithoutIt()
    {
        var moe = new MoeConfig
        {
            Experts = 4, ExpertsUsed = 2, SharedExperts = 0, ExpertFfnDim = 1, LeadingDenseLayers = 0,
            Gating = ExpertGating.Sigmoid, NormalizeWeights = true, WeightsScale = 2.5f, Groups = 1, GroupsUsed = 1,
        };
        float[] logits = [2f, 1f, 0f, -1f];
        float[] bias = [0f, 0f, 0f, 5f]; // pushes expert 3 into the selection
        var chosen = new int[2];
        var weights = new float[2];
        fixed (float* b = bias) MoeRouter.Route(moe, logits, b, chosen, weights, new float[4]);
        Assert.Equal(new[] { 3, 0 }, chosen);
        float s3 = 1f / (1f + MathF.Exp(1f)), s0 = 1f / (1f + MathF.Exp(-2f));
        Assert.Equal(2.5f * s3 / (s3 + s0), weights[0], 5);
        Assert.Equal(2.5f * s0 / (s3 + s0), weights[1], 5);
    }

    [Fact]
    public unsafe void GroupLimitedRoutingOnlyPicksFromTheBestGroups()
    {
        var moe = new MoeConfig
        {
            Experts = 8, ExpertsUsed = 2, SharedExperts = 0, ExpertFfnDim = 1, LeadingDenseLayers = 0,
            Gating = ExpertGating.Softmax, NormalizeWeights = false, WeightsScale = 1f, Groups = 4, GroupsUsed = 1,
        };
        // group 0 holds the single best expert, but group 2's two experts sum higher
        float[] logits = [5f, -9f, 1f, 1f, 4.4f, 4.4f, 0f, 0f];
        var chosen = new int[2];
        var weights = new float[2];
        MoeRouter.Route(moe, logits, null, chosen, weights, new float[8]);
        Assert.Equal(new[] { 4, 5 }, chosen.OrderBy(x => x).ToArray());
    }
}
