// A Q8_0 KV cache (llama.cpp's -ctk q8_0 -ctv q8_0) on the dense and the absorbed-MLA forward passes: logits held to
// an F32 cache's within a measured tolerance, the same however tokens are grouped, K and V types mixed, and models
// whose rows are not whole blocks of 32 refused by name.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Engine;

public sealed class Q8CacheTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-q8cache-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Dense: head dims of 32 (llama) and 64 (qwen2); MLA: the tiny deepseek2 with a 32-value rotary key.</summary>
    private static SynthSpec Spec(string name) => name switch
    {
        "llama-hd32" => new() { Architecture = "llama", Name = "test", Dim = 128, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 160, ContextLength = 256, NormEps = 1e-5f, RopeTheta = 500000f },
        "qwen2-hd64" => new() { Architecture = "qwen2", Name = "test", Dim = 128, Layers = 2, Heads = 2, KvHeads = 1, FfnDim = 160, ContextLength = 256 },
        _ => Synthesizer.FindPreset("deepseek2", "tiny") is var ds ? ds with { Mla = ds.Mla! with { RopeDim = 32 }, ContextLength = 256 } : throw new InvalidOperationException(),
    };

    private LoadedModel Load(string name)
    {
        string path = Path.Combine(_dir, name + ".gguf");
        Synthesizer.Write(Spec(name), GgmlType.F32, 13, path);
        return LoadedModel.Load(path, threads: 2);
    }

    private static int[] Tokens(int n) => Enumerable.Range(0, n).Select(i => (i * 37 + 11) % 250 + 1).ToArray();

    /// <summary>
    /// Max |logit difference| from the F32 cache, relative to the F32 logits' largest magnitude, over 48 positions and at
    /// the first (where attention returns the one value row as it is). Measured (seed 13, random weights), all positions:
    /// Q8_0 1.05e-2 / 1.14e-2 (llama-hd32 / qwen2-hd64), K Q8_0 + V F16 1.16e-2 / 9.0e-3, F16 4.9e-4 / 2.9e-4. The
    /// absorbed MLA form moves far more over the positions: Q8_0 0.36 (its naive form 3.4e-2 on the same weights; F16
    /// 1.6e-3), though 6.4e-3 at the first position. llama.cpp's own Q8_0 cache moves the same file's logits as far
    /// from its F32 cache on these tokens (0.360 against our 0.363, and 4.6e-2 against 3.8e-2 on random ordinary
    /// tokens: ForwardOracleTests.MlaQ8_0CacheMovesTheLogitsAsLlamaCppsQ8_0CacheDoes), so it is the rounding of the
    /// latent on these random weights, not a fault of the cache. The tolerances leave about 2x.
    /// </summary>
    private static (double Q8, double F16) Tolerance(string name) => name.StartsWith("deepseek2") ? (0.75, 4e-3) : (2.5e-2, 1e-3);

    private const double FirstPositionQ8Tolerance = 1.5e-2;

    [Theory]
    [InlineData("llama-hd32")]
    [InlineData("qwen2-hd64")]
    [InlineData("deepseek2-rope32")]
    public void Q8_0CacheLogits_StayNearTheF32Cache(string name)
    {
        using var lm = Load(name);
        var tokens = Tokens(48);
        float[] Logits(GgmlType k, GgmlType v)
        {
            using var s = new InferenceSession(lm.Model, 64, k, v);
            return s.Evaluate(tokens, allLogits: true).ToArray();
        }
        float[] f32 = Logits(GgmlType.F32, GgmlType.F32), q8 = Logits(GgmlType.Q8_0, GgmlType.Q8_0), f16 = Logits(GgmlType.F16, GgmlType.F16);
        float[] mixed = Logits(GgmlType.Q8_0, GgmlType.F16);
        double scale = f32.Max(MathF.Abs);
        int vocab = lm.Config.VocabSize;
        double RelDiff(float[] x, int count) => x.Take(count).Zip(f32, (a, b) => Math.Abs((double)a - b)).Max() / scale;
        double dq8 = RelDiff(q8, q8.Length), df16 = RelDiff(f16, f16.Length), dmixed = RelDiff(mixed, mixed.Length), first = RelDiff(q8, vocab);
        output.WriteLine($"{name}: max |logit - F32 cache's| / max |logit|: q8_0 {dq8:E2} (first position {first:E2}), f16 {df16:E2}, k q8_0 + v f16 {dmixed:E2}");
        var (tq8, tf16) = Tolerance(name);
        Assert.True(first > 0, "a Q8_0 cache rounds K and V: some logit should move");
        Assert.True(first <= FirstPositionQ8Tolerance, $"q8_0, first position: {first} > {FirstPositionQ8Tolerance}");
        Assert.True(dq8 <= tq8, $"q8_0: {dq8} > {tq8}");
        Assert.True(dmixed <= tq8, $"k q8_0, v f16: {dmixed} > {tq8}");
        Assert.True(df16 <= tf16, $"f16: {df16} > {tf16}");
    }

    [Theory]
    [InlineData("llama-hd32")]
    [InlineData("deepseek2-rope32")]
    public void Q8_0Cache_PromptPassEqualsTokenByToken(string name)
    {
        using var lm = Load(name);
        var tokens = Tokens(20);
        using var a = new InferenceSession(lm.Model, 32, GgmlType.Q8_0);
        var all = a.Evaluate(tokens, allLogits: true).ToArray();
        using var b = new InferenceSession(lm.Model, 32, GgmlType.Q8_0);
        int v = lm.Config.VocabSize;
        for (int i = 0; i < tokens.Length; i++)
        {
            var row = b.Evaluate(tokens.AsSpan(i, 1)).ToArray();
            for (int j = 0; j < v; j++)
                Assert.True(Math.Abs(all[i * v + j] - row[j]) <= 1e-5f * (1 + Math.Abs(row[j])), $"position {i}, logit {j}: {all[i * v + j]} vs {row[j]}");
        }
    }

    [Fact]
    public void RowsNotInWholeBlocks_AreRefusedByName()
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        Synthesizer.Write(Synthesizer.FindPreset("llama", "tiny"), GgmlType.F32, 3, path); // head dim 16
        using var lm = LoadedModel.Load(path, threads: 1);
        var e = Assert.Throws<ArgumentException>(() => lm.Model.CreateCache(1, 8, GgmlType.Q8_0));
        Assert.Contains("whole blocks of 32", e.Message);
        e = Assert.Throws<ArgumentException>(() => lm.Model.CreateCache(1, 8, GgmlType.F16, GgmlType.Q8_0));
        Assert.Contains("V cache", e.Message);
        using var fine = lm.Model.CreateCache(1, 8, GgmlType.F16);
    }
}
