// Our forward pass against llama.cpp's on tiny random models of both dense architectures:
// every position of a prefill, the KV-cache decode path, and greedy generation.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Oracle.Tests;

public sealed class ForwardOracleTests(ITestOutputHelper output)
{
    /// <summary>F32 weights: both engines compute in F32; only summation order differs.</summary>
    private const float F32Tolerance = 1e-4f;

    /// <summary>See <see cref="F16CacheDecodeMatchesLlamaCppsF16Cache"/>: 2.45e-3 measured at most, 2x headroom.</summary>
    private const float F16CacheTolerance = 5e-3f;

    public static TheoryData<string> Shapes => new(TinyShapes.All.Keys);

    public static TheoryData<string> DenseShapes => new(TinyShapes.All.Keys.Where(k => !k.StartsWith("ds2")));

    [Theory]
    [MemberData(nameof(Shapes))]
    public void PrefillLogitsMatchLlamaCppAtEveryPosition(string shape)
    {
        string path = TinyShapes.Write(shape, GgmlType.F32);
        int[] tokens = TinyShapes.Tokens(path, 24, seed: 7);
        var expected = LlamaCpp.PrefillLogits(path, tokens);
        using var lm = LoadedModel.Load(path, threads: 2);
        using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
        var ours = session.Evaluate(tokens, allLogits: true).ToArray();
        float diff = MaxDiff(expected, ours, lm.Config.VocabSize);
        output.WriteLine($"{shape}: prefill of {tokens.Length}, max |diff| = {diff:E2}");
        Assert.True(diff <= F32Tolerance, $"{shape}: max |diff| {diff} > {F32Tolerance}");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void DecodeAfterPrefillMatchesLlamaCpp(string shape)
    {
        string path = TinyShapes.Write(shape, GgmlType.F32);
        int[] tokens = TinyShapes.Tokens(path, 40, seed: 11);
        const int prefill = 9;
        var expected = LlamaCpp.DecodeLogits(path, tokens, prefill);
        using var lm = LoadedModel.Load(path, threads: 2);
        using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
        var rows = new List<float> { };
        rows.AddRange(session.Evaluate(tokens.AsSpan(0, prefill)).ToArray());
        for (int i = prefill; i < tokens.Length; i++) rows.AddRange(session.Evaluate(tokens.AsSpan(i, 1)).ToArray());
        float diff = MaxDiff(expected, rows.ToArray(), lm.Config.VocabSize);
        output.WriteLine($"{shape}: prefill {prefill} + {tokens.Length - prefill} decode steps, max |diff| = {diff:E2}");
        Assert.True(diff <= F32Tolerance, $"{shape}: max |diff| {diff} > {F32Tolerance}");
    }

    /// <summary>
    /// An F16 cache against llama.cpp's default F16 cache. Both round K and V to F16 the same way, but
    /// llama.cpp also rounds the query and the attention weights to F16 before its products with the cache (ggml's F16
    /// dot type), which R1Sharp keeps in F32. Measured max |diff| over a prefill of 9 and 31 decode steps, dense shapes:
    /// 1.0e-3 to 2.45e-3 between the two F16 caches; against llama.cpp's F32 cache, its F16 cache 1.4e-3 to 3.8e-3 and
    /// ours 1.0e-3 to 2.7e-3 (nearer in every one of the 8 shapes). The deepseek2 shapes are left out: a rounding of the cache
    /// can change which experts a token's router picks, and then logits jump (ds2-lite-split: llama.cpp's F16 cache
    /// 0.66 from its F32 one, ours 8.2e-3; ds2-lite: 0.16 and 0.35), while without such a flip they agree as the dense
    /// ones do (ds2-v3: 6.1e-3 and 5.0e-3).
    /// </summary>
    [Theory]
    [MemberData(nameof(DenseShapes))]
    public void F16CacheDecodeMatchesLlamaCppsF16Cache(string shape)
    {
        string path = TinyShapes.Write(shape, GgmlType.F32);
        int[] tokens = TinyShapes.Tokens(path, 40, seed: 11);
        const int prefill = 9;
        var expected = LlamaCpp.DecodeLogits(path, tokens, prefill, f16Cache: true);
        var exact = LlamaCpp.DecodeLogits(path, tokens, prefill);
        using var lm = LoadedModel.Load(path, threads: 2);
        using var session = new InferenceSession(lm.Model, 64, GgmlType.F16);
        var rows = new List<float>();
        rows.AddRange(session.Evaluate(tokens.AsSpan(0, prefill)).ToArray());
        for (int i = prefill; i < tokens.Length; i++) rows.AddRange(session.Evaluate(tokens.AsSpan(i, 1)).ToArray());
        float diff = MaxDiff(expected, rows.ToArray(), lm.Config.VocabSize);
        float theirs = MaxDiff(exact, expected.SelectMany(r => r).ToArray(), lm.Config.VocabSize);
        float ours = MaxDiff(exact, rows.ToArray(), lm.Config.VocabSize);
        output.WriteLine($"{shape}: F16 caches max |diff| = {diff:E2}; against llama.cpp's F32 cache: llama.cpp F16 {theirs:E2}, ours F16 {ours:E2}");
        Assert.True(diff <= F16CacheTolerance, $"{shape}: max |diff| {diff} > {F16CacheTolerance}");
    }

    [Theory]
    [InlineData("qwen2-gqa2")]
    [InlineData("llama-gqa2")]
    public void GreedyGenerationMatchesLlamaCpp(string shape)
    {
        string path = TinyShapes.Write(shape, GgmlType.F32);
        int[] prompt = TinyShapes.Tokens(path, 6, seed: 3);
        var expected = LlamaCpp.Greedy(path, prompt, 32);
        using var lm = LoadedModel.Load(path, threads: 2);
        using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
        var ours = session.Generate(prompt, new Sampler(SamplingParams.Greedy), 32, _ => false).ToArray();
        output.WriteLine($"llama.cpp: {string.Join(",", expected)}");
        output.WriteLine($"ours:      {string.Join(",", ours)}");
        Assert.Equal(expected, ours);
    }

    /// <summary>
    /// F16, BF16, Q8_0 and Q5_0 weights. Both engines round activations to the weight's dot type (F16, BF16, Q8_0 blocks)
    /// before each product, so the first position, which has no attention sum, agrees to float precision. At later
    /// positions a 1e-7 difference in summation order can flip one activation's rounding by an ulp of the dot type,
    /// which shows in the logits as below. Measured max |diff| over 24 positions (qwen2-gqa2 / llama-gqa2):
    /// F16 1.5e-3 / 1.2e-3, BF16 2.4e-7 / 1.1e-2, Q8_0 4.8e-7 / 4.8e-7, Q5_0 (its interleaved layout) 9.5e-7 / 7.2e-7.
    /// The tolerances leave about 2x headroom.
    /// </summary>
    [Theory]
    [InlineData("qwen2-gqa2", GgmlType.F16, 4e-3f)]
    [InlineData("qwen2-gqa2", GgmlType.BF16, 2.5e-2f)]
    [InlineData("qwen2-gqa2", GgmlType.Q8_0, 2e-3f)]
    [InlineData("llama-gqa2", GgmlType.F16, 4e-3f)]
    [InlineData("llama-gqa2", GgmlType.BF16, 2.5e-2f)]
    [InlineData("llama-gqa2", GgmlType.Q8_0, 2e-3f)]
    [InlineData("qwen2-gqa2", GgmlType.Q5_0, 2e-3f)]
    [InlineData("llama-gqa2", GgmlType.Q5_0, 2e-3f)]
    public void TypedWeightsMatchLlamaCppWithinTolerance(string shape, GgmlType type, float tolerance)
    {
        string path = TinyShapes.Write(shape, type);
        int[] tokens = TinyShapes.Tokens(path, 24, seed: 5);
        var expected = LlamaCpp.PrefillLogits(path, tokens);
        using var lm = LoadedModel.Load(path, threads: 2);
        using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
        var ours = session.Evaluate(tokens, allLogits: true).ToArray();
        int vocab = lm.Config.VocabSize;
        float first = MaxDiff(expected[..1], ours.AsSpan(0, vocab).ToArray(), vocab);
        float diff = MaxDiff(expected, ours, vocab);
        output.WriteLine($"{shape} {type}: position 0 max |diff| = {first:E2}; all positions {diff:E2} (tolerance {tolerance:E0})");
        Assert.True(first <= F32Tolerance, $"{shape} {type}: position 0 max |diff| {first} > {F32Tolerance}");
        Assert.True(diff <= tolerance, $"{shape} {type}: max |diff| {diff} > {tolerance}");
    }

    /// <summary>
    /// A Q8_0 cache on the absorbed MLA form, where the cached latent serves as key and value: llama.cpp's own logits
    /// with a Q8_0 cache against its F32 cache (flash attention on for both) are the measure of how far rounding the
    /// latent moves this random-weight model, and ours with a Q8_0 cache against our F32 cache must move about as far.
    /// Both relative to the F32 logits' largest magnitude, over a prefill of 48 (the tiny V3 shape with a 32-value
    /// rotary key, so that the latent row is whole Q8_0 blocks).
    /// </summary>
    [Fact]
    public void MlaQ8_0CacheMovesTheLogitsAsLlamaCppsQ8_0CacheDoes()
    {
        var spec = Synthesizer.FindPreset("deepseek2", "tiny") with { ContextLength = 256 };
        spec = spec with { Mla = spec.Mla! with { RopeDim = 32 } };
        string path = Path.Combine(TinyShapes.ScratchDir, "ds2-v3-rope32.gguf");
        Synthesizer.Write(spec, GgmlType.F32, seed: 13, path);
        using var lm = LoadedModel.Load(path, threads: 2);
        // random ordinary tokens, and the run of ids Q8CacheTests feeds (control tokens among them)
        foreach (var tokens in new[] { TinyShapes.Tokens(path, 48, seed: 11), Enumerable.Range(0, 48).Select(i => (i * 37 + 11) % 250 + 1).ToArray() })
        {
            float[] Flat(float[][] rows) => rows.SelectMany(r => r).ToArray();
            float[] theirF32 = Flat(LlamaCpp.PrefillLogits(path, tokens, LLama.Native.GGMLType.GGML_TYPE_F32));
            float[] theirQ8 = Flat(LlamaCpp.PrefillLogits(path, tokens, LLama.Native.GGMLType.GGML_TYPE_Q8_0));
            float[] Ours(GgmlType type)
            {
                using var session = new InferenceSession(lm.Model, 64, type);
                return session.Evaluate(tokens, allLogits: true).ToArray();
            }
            float[] ourF32 = Ours(GgmlType.F32), ourQ8 = Ours(GgmlType.Q8_0);
            double Rel(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max() / b.Max(MathF.Abs);
            double theirs = Rel(theirQ8, theirF32), ours = Rel(ourQ8, ourF32), f32 = Rel(ourF32, theirF32), q8 = Rel(ourQ8, theirQ8);
            output.WriteLine($"tokens {string.Join(",", tokens.Take(4))}...: max |logit difference| / max |logit|: llama.cpp q8_0 vs its f32 cache {theirs:E2}, " +
                             $"ours q8_0 vs our f32 {ours:E2}; the two f32 caches {f32:E2}, the two q8_0 caches {q8:E2}");
            Assert.True(f32 <= 1e-2, $"the F32 caches should agree: {f32}");
            Assert.True(theirs > 0, "llama.cpp's Q8_0 cache should move some logit");
            Assert.True(ours <= 2 * theirs, $"ours moves {ours}, llama.cpp's {theirs}");
        }
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
