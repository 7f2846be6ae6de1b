// Sampling with speculation keeps the target's distribution: accepted tokens pass min(1, p/q), rejected ones are
// drawn from norm(max(0, p − q)), p being the whole sampler chain's distribution (penalties, temperature, top-k,
// top-p, min-p). Chi-square tests over many seeded draws: of the rule alone (Sampler.Verify), and of whole
// generations through the scheduler with a sampling draft model, against the exact distribution of the target.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed class SpeculativeSamplingTests : IClassFixture<SpeculativeDecodingTests.Models>
{
    private readonly SpeculativeDecodingTests.Models _m;

    public SpeculativeSamplingTests(SpeculativeDecodingTests.Models m) => _m = m;

    /// <summary>The chain under test: every step that shapes p.</summary>
    private static readonly SamplingParams Chain = new()
    {
        Temperature = 0.8f, TopK = 3, TopP = 0.97f, MinP = 0.02f, RepetitionPenalty = 1.3f, Seed = 1,
    };

    /// <summary>
    /// Pearson's statistic of <paramref name="observed"/> against <paramref name="expected"/> probabilities (cells
    /// expecting fewer than 5 draws pooled), and the 0.1% critical value of its chi-square distribution
    /// (Wilson–Hilferty).
    /// </summary>
    private static (double Statistic, double Critical, int Df) ChiSquare(IReadOnlyDictionary<string, int> observed, IReadOnlyDictionary<string, double> expected, int n)
    {
        double stat = 0, pooledE = 0;
        int pooledO = 0, cells = 0;
        foreach (var (key, p) in expected)
        {
            int o = observed.GetValueOrDefault(key);
            double e = p * n;
            if (e < 5) { pooledE += e; pooledO += o; continue; }
            stat += (o - e) * (o - e) / e;
            cells++;
        }
        // anything drawn outside the expected support lands in the pool too (and fails the test when it is large)
        pooledO += observed.Where(kv => !expected.ContainsKey(kv.Key)).Sum(kv => kv.Value);
        if (pooledE > 0 || pooledO > 0)
        {
            stat += (pooledO - pooledE) * (pooledO - pooledE) / Math.Max(pooledE, 1e-9);
            cells++;
        }
        int df = cells - 1;
        double z = 3.090, a = 2.0 / (9 * df);
        return (stat, df * Math.Pow(1 - a + z * Math.Sqrt(a), 3), df);
    }

    public static TheoryData<string> Drafts => new() { "far", "near", "same", "point" };

    // the rule alone, on fixed rows: a draft drawn from q (a chain of its own over other logits), verified against p
    [Theory]
    [MemberData(nameof(Drafts))]
    public void VerifiedTokensFollowTheTargetsDistribution(string draftKind)
    {
        float[] target = [2.0f, 1.6f, 1.1f, 0.4f, -0.5f, 0.9f, 1.8f, -1.0f];
        float[] draftLogits = draftKind switch
        {
            "far" => [-1f, 0.2f, 2.5f, 2.2f, 0.1f, 1.9f, -0.3f, 0.5f], // mass where p has little, some outside p's top-k
            "near" => [1.8f, 1.7f, 1.0f, 0.6f, -0.4f, 0.7f, 1.5f, -1.2f],
            _ => target,
        };
        int[] history = [6, 6, 3];
        const int N = 60_000;
        var p = new TokenDistribution();
        new Sampler(Chain).Sample(target, history, p);
        var expected = Enumerable.Range(0, p.Count).ToDictionary(i => p.Ids[i].ToString(), i => (double)p.Probabilities[i]);

        var verifier = new Sampler(Chain with { Seed = 99 });
        var drafter = new Sampler(Chain with { Seed = 7, Temperature = draftKind == "point" ? 0 : 0.8f });
        var q = new TokenDistribution();
        var observed = new Dictionary<string, int>();
        int accepted = 0;
        for (int i = 0; i < N; i++)
        {
            int draft = drafter.Sample(draftLogits, history, q);
            int token = verifier.Verify(target, history, draft, draftKind == "point" ? null : q);
            if (token == draft) accepted++;
            observed[token.ToString()] = observed.GetValueOrDefault(token.ToString()) + 1;
        }
        var (stat, critical, df) = ChiSquare(observed, expected, N);
        Assert.True(stat < critical, $"chi-square {stat:F1} >= {critical:F1} (df {df}); observed {string.Join(", ", observed.OrderBy(kv => kv.Key))}");
        // the acceptance rate is Σ min(p, q) (the drafts did get verified, not just resampled)
        double overlap = 0;
        for (int i = 0; i < p.Count; i++) overlap += Math.Min(p.Probabilities[i], q.IsPointMass ? 0 : q.ProbabilityOf(p.Ids[i]));
        if (draftKind == "same") Assert.Equal(N, accepted);
        if (draftKind is "far" or "near") Assert.InRange(accepted / (double)N, overlap - 0.02, overlap + 0.02);
    }

    // whole generations through the scheduler: the first three tokens of many seeded requests, drafted by a sampling
    // draft model (the target itself: nearly all accepted; another model: mostly rejected), against the exact joint
    // distribution p(t1) p(t2 | t1) p(t3 | t1 t2) of the target's chain
    [Theory]
    [InlineData("other")]
    [InlineData("quantized")]
    [InlineData("self")]
    public async Task GenerationsWithADraftModelFollowTheTargetsDistribution(string draft)
    {
        using var lm = LoadedModel.Load(_m.Qwen2, threads: 1);
        int[] prompt = [5, 17, 42, 9, 33, 17];
        var expected = ExactJoint(lm, prompt, 3);

        const int N = 6000;
        using var source = DraftModelSource.Load(draft switch { "self" => _m.Qwen2, "quantized" => _m.Qwen2Q4, _ => _m.Qwen2Other }, lm, pMin: 0);
        var steps = new List<StepStats>();
        var options = new SchedulerOptions
        {
            Slots = 8, ContextSize = 32, MaxQueue = N,
            Speculation = new SpeculationOptions { Source = source, DraftMax = 4, MinAcceptRate = 0 },
            OnStep = st => { lock (steps) steps.Add(st); },
        };
        var observed = await Sampled(lm, prompt, N, options);
        var (stat, critical, df) = ChiSquare(observed, expected, N);
        int drafted = steps.Sum(st => st.DraftTokens), accepted = steps.Sum(st => st.AcceptedTokens);
        Assert.True(drafted >= N, $"only {drafted} draft tokens for {N} requests");
        Assert.True(stat < critical, $"chi-square {stat:F1} >= {critical:F1} (df {df}); {accepted} of {drafted} drafts accepted");
        double rate = accepted / (double)drafted;
        Assert.True(draft switch { "self" => rate > 0.97, "quantized" => rate is > 0.3 and < 0.97, _ => rate < 0.5 }, $"{accepted} of {drafted} drafts accepted");
    }

    /// <summary>The first three generated tokens of each of <paramref name="n"/> seeded requests (seeds 1000..), as "t1,t2,t3".</summary>
    private static async Task<Dictionary<string, int>> Sampled(LoadedModel lm, int[] prompt, int n, SchedulerOptions options)
    {
        var observed = new Dictionary<string, int>();
        using var s = new Scheduler(lm.Model, lm.Tokenizer, _ => false, options);
        s.Pause();
        var runs = Enumerable.Range(0, n).Select(async i =>
        {
            var ids = new List<int>();
            var request = new EngineRequest
            {
                Prompt = prompt, MaxTokens = 4, Sampling = Chain with { Seed = (ulong)i + 1000 },
                Steer = (id, _) => { ids.Add(id); return null; },
            };
            await foreach (var _ in s.Submit(request)) { }
            return string.Join(",", ids.Take(3));
        }).ToList();
        s.Resume();
        foreach (string key in await Task.WhenAll(runs)) observed[key] = observed.GetValueOrDefault(key) + 1;
        return observed;
    }

    /// <summary>The exact probability of every sequence of <paramref name="depth"/> tokens after the prompt under the chain, history being the generated tokens (as the scheduler's).</summary>
    private static Dictionary<string, double> ExactJoint(LoadedModel lm, int[] prompt, int depth)
    {
        var result = new Dictionary<string, double>();
        using var session = new InferenceSession(lm.Model, 32);
        void Walk(List<int> prefix, double prob)
        {
            if (prefix.Count == depth)
            {
                result[string.Join(",", prefix)] = prob;
                return;
            }
            session.Truncate(0);
            session.Evaluate([.. prompt, .. prefix]);
            var p = new TokenDistribution();
            new Sampler(Chain).Sample(session.LastLogits, prefix.ToArray(), p);
            var ids = p.Ids.ToArray();
            var probs = p.Probabilities.ToArray();
            for (int i = 0; i < ids.Length; i++) Walk([.. prefix, ids[i]], prob * probs[i]);
        }
        Walk([], 1);
        return result;
    }
}
