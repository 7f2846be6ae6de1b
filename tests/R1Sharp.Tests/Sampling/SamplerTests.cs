using System.Runtime.InteropServices;
using R1Sharp.Sampling;

namespace R1Sharp.Tests.Sampling;

public sealed class SamplerTests
{
    private static readonly float[] s_logits = [1.0f, 3.0f, 2.5f, -1.0f, 0.5f];

    [Fact]
    public void TemperatureZeroIsArgMax()
    {
        var s = new Sampler(SamplingParams.Greedy);
        Assert.Equal(1, s.Sample(s_logits, []));
    }

    [Fact]
    public void TemperatureZeroTakesTheFirstOfTiedMaxima_OnAVocabularyLongRow()
    {
        // the vectorized argmax of a full row, with the maximum at two places (the first wins, as in the candidate
        // loop) and with a NaN present (skipped, as the candidate loop's comparisons skip it)
        var rng = new Random(3);
        var logits = new float[151_936];
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)(rng.NextDouble() * 20 - 10);
        logits[70_001] = 25f;
        logits[140_000] = 25f;
        var s = new Sampler(SamplingParams.Greedy);
        Assert.Equal(70_001, s.Sample(logits, []));
        logits[5] = float.NaN;
        Assert.Equal(70_001, s.Sample(logits, []));
        logits[5] = 30f;
        logits[6] = 30f;
        Assert.Equal(5, s.Sample(logits, []));
    }

    [Fact]
    public void TopKOfOneIsGreedyAtAnyTemperature()
    {
        var s = new Sampler(new SamplingParams { Temperature = 5f, TopK = 1, Seed = 9 });
        for (int i = 0; i < 50; i++) Assert.Equal(1, s.Sample(s_logits, []));
    }

    [Fact]
    public void SameSeedSameDraws()
    {
        var p = new SamplingParams { Temperature = 1.0f, Seed = 1234 };
        var a = new Sampler(p);
        var b = new Sampler(p);
        var c = new Sampler(p with { Seed = 4321 });
        var da = Enumerable.Range(0, 64).Select(_ => a.Sample(s_logits, [])).ToArray();
        var db = Enumerable.Range(0, 64).Select(_ => b.Sample(s_logits, [])).ToArray();
        var dc = Enumerable.Range(0, 64).Select(_ => c.Sample(s_logits, [])).ToArray();
        Assert.Equal(da, db);
        Assert.NotEqual(da, dc);
    }

    [Fact]
    public void DrawsFollowTheSoftmaxAtTemperature()
    {
        const float t = 0.8f;
        const int n = 40000;
        var s = new Sampler(new SamplingParams { Temperature = t, TopP = 1, Seed = 7 });
        var counts = new int[s_logits.Length];
        for (int i = 0; i < n; i++) counts[s.Sample(s_logits, [])]++;
        var expected = s_logits.Select(l => Math.Exp(l / t)).ToArray();
        double z = expected.Sum();
        for (int i = 0; i < counts.Length; i++)
        {
            double p = expected[i] / z;
            double sigma = Math.Sqrt(n * p * (1 - p));
            Assert.True(Math.Abs(counts[i] - n * p) < 5 * sigma + 1, $"token {i}: {counts[i]} draws, expected {n * p:F0}");
        }
    }

    [Fact]
    public void TopPKeepsTheSmallestSetReachingP()
    {
        // probabilities 0.5, 0.3, 0.2 at temperature 1
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.2f)];
        var s = new Sampler(new SamplingParams { Temperature = 1, TopP = 0.7f, Seed = 3 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 2000; i++) seen.Add(s.Sample(logits, []));
        Assert.Equal(new HashSet<int> { 0, 1 }, seen);
    }

    [Fact]
    public void MinPDropsTokensBelowAFractionOfTheTop()
    {
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.2f)];
        var s = new Sampler(new SamplingParams { Temperature = 1, MinP = 0.5f, Seed = 3 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 2000; i++) seen.Add(s.Sample(logits, []));
        Assert.Equal(new HashSet<int> { 0, 1 }, seen); // 0.2 < 0.5 * 0.5
    }

    [Fact]
    public void RepetitionPenaltyMovesGreedyAwayFromRepeatedToken()
    {
        var plain = new Sampler(SamplingParams.Greedy);
        var penalized = new Sampler(SamplingParams.Greedy with { RepetitionPenalty = 1.5f });
        Assert.Equal(1, plain.Sample(s_logits, [1, 1]));
        Assert.Equal(2, penalized.Sample(s_logits, [1, 1])); // 3.0 / 1.5 = 2.0 < 2.5
    }

    [Fact]
    public void PresenceAndFrequencyPenaltiesSubtract()
    {
        var presence = new Sampler(SamplingParams.Greedy with { PresencePenalty = 0.6f });
        Assert.Equal(2, presence.Sample(s_logits, [1])); // 3.0 - 0.6 = 2.4 < 2.5
        var frequency = new Sampler(SamplingParams.Greedy with { FrequencyPenalty = 0.2f });
        Assert.Equal(1, frequency.Sample(s_logits, [1, 1])); // 3.0 - 0.4 = 2.6 > 2.5
        Assert.Equal(2, frequency.Sample(s_logits, [1, 1, 1])); // 3.0 - 0.6 = 2.4
    }

    [Theory]
    [InlineData(-1f, 0, 1f, 0f)]
    [InlineData(1f, -2, 1f, 0f)]
    [InlineData(1f, 0, 0f, 0f)]
    [InlineData(1f, 0, 1.5f, 0f)]
    [InlineData(1f, 0, 1f, 2f)]
    public void InvalidParametersAreRejected(float temperature, int topK, float topP, float minP)
    {
        var p = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP };
        Assert.Throws<ArgumentException>(() => new Sampler(p));
    }

    public static TheoryData<float, int, float, float, float> MaskedChains => new()
    {
        { 0.6f, 0, 0.95f, 0f, 1f },   // the server's defaults: top-p sorts the candidates
        { 1.0f, 0, 1f, 0f, 1f },      // no truncation: the draw walks the candidates in id order
        { 0.8f, 40, 0.9f, 0.05f, 1f },
        { 1.3f, 0, 1f, 0.1f, 1.3f },  // min-p and a repetition penalty over the history
        { 0f, 0, 1f, 0f, 1.2f },      // greedy with a penalty (the candidate loop, not the argmax)
        { 0f, 0, 1f, 0f, 1f },        // greedy argmax
    };

    // a row of distinct logits (so no tie orders), in [-8, 8)
    private static float[] DistinctRow(Random rng, int vocab)
    {
        var row = new float[vocab];
        for (int i = 0; i < vocab; i++) row[i] = (float)(rng.NextDouble() * 16 - 8) + i * 1e-7f;
        return row;
    }

    // up to 'count' random tokens allowed, and token 17 (penalized by the tests' history); the row with the rest at -infinity
    private static (ulong[] Allowed, float[] Masked) AllowedSubset(Random rng, float[] row, int count)
    {
        var allowed = new ulong[(row.Length + 63) >> 6];
        var masked = new float[row.Length];
        Array.Fill(masked, float.NegativeInfinity);
        for (int k = 0; k < count; k++)
        {
            int t = rng.Next(row.Length);
            allowed[t >> 6] |= 1UL << t;
            masked[t] = row[t];
        }
        allowed[17 >> 6] |= 1UL << 17;
        masked[17] = row[17];
        return (allowed, masked);
    }

    [Theory]
    [MemberData(nameof(MaskedChains))]
    public void SamplingOverAnAllowedSet_DrawsAsTheChainOverTheMaskedRow(float temperature, int topK, float topP, float minP, float repetition)
    {
        // the grammar's refused-pick path: the chain over the allowed tokens alone must make the same draws, seed for
        // seed, as the chain over the whole row with every other logit at -infinity (distinct logits, so no tie orders)
        const int vocab = 32_000;
        var rng = new Random(11);
        var row = DistinctRow(rng, vocab);
        int[] history = [5, 17, 17, 4_000, 31_000];
        var p = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, RepetitionPenalty = repetition, Seed = 3 };
        foreach (int allowedCount in new[] { 1, 7, 300, 8_000 })
        {
            var (allowed, masked) = AllowedSubset(rng, row, allowedCount);
            var full = new Sampler(p);
            var subset = new Sampler(p);
            for (int draw = 0; draw < 100; draw++)
            {
                int expected = full.Sample(masked, history);
                Assert.True((allowed[expected >> 6] & (1UL << expected)) != 0);
                Assert.Equal(expected, subset.Sample(masked, history, allowed));
            }
        }
    }

    [Theory]
    [MemberData(nameof(MaskedChains))]
    public void RedrawAfterARefusedPick_DrawsAsTheChainOverTheMaskedRow(float temperature, int topK, float topP, float minP, float repetition)
    {
        // the scheduler's refused-pick path: Sample on the whole row, then Redraw from that chain's sorted row. Seed for
        // seed, the first draw must be Sample's and the redraw the chain's over the row with every refused logit at
        // -infinity (distinct logits, so no tie orders); a sampler that draws without a refusal in between stays in step
        const int vocab = 32_000;
        var rng = new Random(12);
        var row = DistinctRow(rng, vocab);
        var history = new List<int> { 5, 17, 17, 4_000, 31_000 };
        var p = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, RepetitionPenalty = repetition, Seed = 4 };
        int redrawn = 0;
        foreach (int allowedCount in new[] { 1, 7, 300, 8_000, 31_000 })
        {
            var (allowed, masked) = AllowedSubset(rng, row, allowedCount);
            var reference = new Sampler(p);
            var redraw = new Sampler(p);
            for (int draw = 0; draw < 60; draw++)
            {
                int first = reference.Sample(row, CollectionsMarshal.AsSpan(history));
                Assert.Equal(first, redraw.Sample(row, CollectionsMarshal.AsSpan(history)));
                if ((allowed[first >> 6] & (1UL << first)) == 0)
                {
                    int expected = reference.Sample(masked, CollectionsMarshal.AsSpan(history));
                    Assert.True((allowed[expected >> 6] & (1UL << expected)) != 0);
                    Assert.Equal(expected, redraw.Redraw(row, CollectionsMarshal.AsSpan(history), allowed));
                    redrawn++;
                    first = expected;
                }
                history.Add(first);
            }
        }
        Assert.True(redrawn > 0);
    }
}
