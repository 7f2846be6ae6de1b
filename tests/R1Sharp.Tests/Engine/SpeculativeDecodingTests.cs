// Speculative decoding through the scheduler (the server's and R1ChatClient's engine): greedy output is the same
// token for token with every proposer, single and batched, at the context limit and with a stop string inside an
// accepted run; the proposers draft what they should; the draft length adapts and a poorly accepted sequence pauses.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed class SpeculativeDecodingTests : IClassFixture<SpeculativeDecodingTests.Models>
{
    /// <summary>Tiny random-weight files: a target per architecture, and a second qwen2 (another seed) as a draft that disagrees.</summary>
    public sealed class Models : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-spec-").FullName;
        public string Qwen2 { get; }
        public string Qwen2Other { get; }
        /// <summary>The qwen2 target's weights in Q4_0: a draft that mostly agrees with it.</summary>
        public string Qwen2Q4 { get; }
        public string Llama { get; }
        public string DeepSeekMtp { get; }

        public Models()
        {
            Qwen2 = Write("qwen2", "tiny", 11);
            Qwen2Other = Write("qwen2", "tiny", 12);
            Qwen2Q4 = Write("qwen2", "tiny", 11, GgmlType.Q4_0);
            Llama = Write("llama", "tiny", 13);
            DeepSeekMtp = Write("deepseek2", "tiny-mtp", 14);
        }

        private string Write(string arch, string preset, ulong seed, GgmlType type = GgmlType.F32)
        {
            string path = Path.Combine(_dir, $"{arch}-{preset}-{seed}-{type}.gguf");
            Synthesizer.Write(Synthesizer.FindPreset(arch, preset), type, seed, path);
            return path;
        }

        public string File(string name) => name switch
        {
            "qwen2" => Qwen2,
            "llama" => Llama,
            "deepseek2" => DeepSeekMtp,
            _ => throw new ArgumentException(name),
        };

        public void Dispose() => Directory.Delete(_dir, true);
    }

    private readonly Models _m;

    public SpeculativeDecodingTests(Models m) => _m = m;

    private static int[] Tokens(int n, int salt) => Enumerable.Range(0, n).Select(i => (i * 37 + salt * 101 + 3) % 250 + 1).ToArray();

    /// <summary>Prompts that repeat themselves (so n-gram lookup finds matches) and ones that do not.</summary>
    private static int[] Prompt(int i)
    {
        var head = Tokens(6 + i, i);
        return i % 2 == 0 ? [.. head, .. head, .. head[..3]] : head;
    }

    private static async Task<(string Text, GenerationChunk Last)> Collect(IAsyncEnumerable<GenerationChunk> stream)
    {
        var text = new System.Text.StringBuilder();
        GenerationChunk last = default;
        await foreach (var c in stream)
        {
            text.Append(c.Text);
            last = c;
        }
        return (text.ToString(), last);
    }

    /// <summary>The proposer a test names, over <paramref name="target"/>; a draft model it loads is disposed with the returned object.</summary>
    private IDraftSource Source(string proposer, LoadedModel target, string targetPath, float pMin = 0) => proposer switch
    {
        "self" => DraftModelSource.Load(targetPath, target, pMin),
        "other" => DraftModelSource.Load(_m.Qwen2Other, target, pMin),
        "ngram" => new NgramSource(),
        "mtp" => new MtpSource(target.Model, target.Tokenizer.EndOfGeneration, pMin),
        _ => throw new ArgumentException(proposer),
    };

    private static async Task<List<(string Text, GenerationChunk Last)>> RunAll(LoadedModel lm, SchedulerOptions options, IReadOnlyList<EngineRequest> requests,
        List<StepStats>? steps = null)
    {
        options = options with { OnStep = steps is null ? null : st => { lock (steps) steps.Add(st); } };
        using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, options);
        s.Pause();
        var tasks = requests.Select(r => Collect(s.Submit(r))).ToList();
        s.Resume();
        return [.. await Task.WhenAll(tasks)];
    }

    public static TheoryData<string, string> Pairs => new()
    {
        { "qwen2", "self" }, { "qwen2", "other" }, { "qwen2", "ngram" },
        { "llama", "ngram" }, { "llama", "self" },
        { "deepseek2", "mtp" }, { "deepseek2", "ngram" }, { "deepseek2", "self" },
    };

    // 8 concurrent greedy requests, one of them filling the context exactly and one stopped by a string from the
    // middle of its own output: the same text, finish reason and token count with speculation as without
    [Theory]
    [MemberData(nameof(Pairs))]
    public async Task GreedyBatchedOutputIsTheSameAsWithoutSpeculation(string arch, string proposer)
    {
        string path = _m.File(arch);
        const int Ctx = 96;
        using var lm = LoadedModel.Load(path, threads: 1);
        var requests = Enumerable.Range(0, 8).Select(i => new EngineRequest
        {
            Prompt = Prompt(i),
            MaxTokens = i == 7 ? Ctx - Prompt(7).Length : 40,
            IgnoreEos = true,
            Sampling = SamplingParams.Greedy,
        }).ToList();
        var options = new SchedulerOptions { Slots = 8, ContextSize = Ctx };
        var plain = await RunAll(lm, options, requests);

        // a stop string that falls inside the output of request 0, past its first tokens
        string full = plain[0].Text;
        Assert.True(full.Length >= 20, full);
        string stop = full.Substring(full.Length * 2 / 3, 2);
        requests[0] = requests[0] with { StopStrings = [stop] };
        plain[0] = (await RunAll(lm, options, [requests[0]]))[0];
        Assert.Equal(FinishReason.Stop, plain[0].Last.Finish);

        using var source = Source(proposer, lm, path);
        var steps = new List<StepStats>();
        var spec = await RunAll(lm, options with { Speculation = new SpeculationOptions { Source = source, DraftMax = 6, MinAcceptRate = 0 } }, requests, steps);
        for (int i = 0; i < requests.Count; i++)
        {
            Assert.Equal(plain[i].Text, spec[i].Text);
            Assert.Equal(plain[i].Last.Finish, spec[i].Last.Finish);
            Assert.Equal(plain[i].Last.Usage, spec[i].Last.Usage);
        }
        Assert.Equal(FinishReason.Length, spec[7].Last.Finish);
        int drafted = steps.Sum(s => s.DraftTokens), accepted = steps.Sum(s => s.AcceptedTokens);
        Assert.True(drafted > 0, "nothing was drafted");
        // a model drafting for itself agrees with itself: every draft token but those cut by rounding is accepted
        if (proposer == "self") Assert.True(accepted >= 0.95 * drafted, $"{accepted} of {drafted} accepted");
    }

    // seeded sampling with a point-mass proposer draws from the random stream exactly as without speculation
    [Fact]
    public async Task SeededSamplingWithNgramDraftsGivesTheSameTokens()
    {
        using var lm = LoadedModel.Load(_m.Qwen2, threads: 1);
        var sampling = new SamplingParams { Temperature = 0.9f, TopK = 20, TopP = 0.95f, RepetitionPenalty = 1.1f, Seed = 77 };
        var requests = Enumerable.Range(0, 4).Select(i => new EngineRequest
        {
            Prompt = Prompt(2 * i), MaxTokens = 48, IgnoreEos = true, Sampling = sampling with { Seed = (ulong)(77 + i) },
        }).ToList();
        var options = new SchedulerOptions { Slots = 4, ContextSize = 128 };
        var plain = await RunAll(lm, options, requests);
        using var source = new NgramSource(minN: 1, maxN: 3);
        var steps = new List<StepStats>();
        var spec = await RunAll(lm, options with { Speculation = new SpeculationOptions { Source = source, MinAcceptRate = 0 } }, requests, steps);
        Assert.Equal(plain.Select(p => p.Text), spec.Select(p => p.Text));
        Assert.True(steps.Sum(s => s.AcceptedTokens) > 0, "no draft was accepted: the test did not speculate");
    }

    /// <summary>The trained default model: another vocabulary (327 task tokens) than the tiny files'.</summary>
    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "models", "r1sharp-arith.gguf");

    [Fact]
    public void ADraftWithAnotherVocabularyIsRefusedNamingTheFirstDifference()
    {
        using var target = LoadedModel.Load(_m.Qwen2, threads: 1);
        var e = Assert.Throws<ArgumentException>(() => DraftModelSource.Load(DefaultModelPath, target));
        Assert.Matches("^the draft model's vocabulary differs from the target's: token [0-9]+ is '.*' in the draft, '.*' in the target$", e.Message);
    }

    [Fact]
    public void MtpNeedsAModelWithNextnLayers()
    {
        using var lm = LoadedModel.Load(_m.Qwen2, threads: 1);
        var e = Assert.Throws<ArgumentException>(() => new MtpSource(lm.Model, lm.Tokenizer.EndOfGeneration));
        Assert.Contains("multi-token-prediction", e.Message);
    }

    [Fact]
    public void NgramDraftsTheContinuationOfTheMostRecentMatch()
    {
        var p = new NgramProposer(minN: 2, maxN: 3);
        var draft = new Draft(8);
        draft.Reset(4);
        // ... 5 6 7 8 | ... 5 6 9 | 5 6 → the most recent "5 6" was followed by 9, 5, 6, and the copy goes on: 9
        p.Propose([1, 5, 6, 7, 8, 2, 5, 6, 9, 5, 6], draft);
        Assert.Equal([9, 5, 6, 9], draft.Tokens.ToArray());
        // a longer match wins over a more recent shorter one: "3 5 6" → 7 8 2 3
        draft.Reset(4);
        p.Propose([3, 5, 6, 7, 8, 2, 4, 5, 6, 1, 3, 5, 6], draft);
        Assert.Equal([7, 8, 2, 4], draft.Tokens.ToArray());
        draft.Reset(4);
        p.Propose([1, 2, 3, 4], draft);
        Assert.Equal(0, draft.Count);
        draft.Reset(2);
        p.Propose([7, 7, 7, 7, 7], draft);
        Assert.Equal([7, 7], draft.Tokens.ToArray());
    }

    /// <summary>Proposes a fixed token every time, filling the draft.</summary>
    private sealed class FixedProposer(int token) : IDraftProposer, IDraftSource
    {
        public int Calls;
        public string Name => "wrong";
        public IDraftProposer CreateProposer(int contextSize) => this;
        public void Start(SamplingParams sampling) { }

        public void Propose(ReadOnlySpan<int> tokens, Draft draft)
        {
            Calls++;
            while (!draft.IsFull) draft.Add(token);
        }

        public void Accepted(int proposed, int accepted) { }
        public void Dispose() { }
    }

    [Fact]
    public void DraftLengthGrowsWithAcceptanceAndPoorAcceptancePauses()
    {
        var wrong = new FixedProposer(1);
        using var spec = new Speculator(new SpeculationOptions { Source = wrong, DraftMax = 8, MinAcceptRate = 0.3 }, 256);
        spec.Start(SamplingParams.Greedy);
        Assert.Equal(4, spec.Propose([1, 2, 3], 100));
        spec.Done(4, 5);
        Assert.Equal(6, spec.Propose([1, 2, 3], 100));
        spec.Done(6, 7);
        Assert.Equal(8, spec.Propose([1, 2, 3], 100));
        spec.Done(8, 9);
        Assert.Equal(3, spec.Propose([1, 2, 3], 3)); // the room bounds it
        spec.Done(0, 1);
        // nothing accepted from now on: the length falls to 1, then the sequence pauses
        int proposals = 0, silent = 0;
        for (int pass = 0; pass < 40; pass++)
        {
            int n = spec.Propose([1, 2, 3], 100);
            if (n > 0) proposals++;
            else silent++;
            spec.Done(0, 1);
        }
        Assert.True(silent >= 16, $"{silent} passes without a draft");
        Assert.True(proposals >= 4, $"{proposals} passes with one");
        Assert.Equal(wrong.Calls, 4 + proposals);
    }

    // the MTP head's catch-up over many positions in one pass equals the same positions one at a time
    [Fact]
    public void MtpHeadGivesTheSameLogitsInOneBatchAsPositionByPosition()
    {
        using var lm = LoadedModel.Load(_m.DeepSeekMtp, threads: 1);
        var head = lm.Model.Mtp!;
        int dim = head.Dim, vocab = lm.Config.VocabSize, n = 9;
        var tokens = Tokens(n + 1, 4);
        // the main model's hidden states of the sequence
        var hidden = new float[n * dim];
        using (var session = new InferenceSession(lm.Model, 32))
            session.Evaluate(tokens.AsSpan(0, n), 1, hidden);

        using var one = head.CreateCache(1, 32);
        var batch = new Batch();
        for (int i = 0; i < n; i++) batch.Add(tokens[i + 1], i, 0, true);
        var all = new float[n * vocab];
        var outAll = new float[n * dim];
        head.Forward(batch, hidden, one, all, outAll);
        Assert.Equal(n, one.Lengths[0]);

        using var step = head.CreateCache(1, 32);
        var row = new float[vocab];
        var outRow = new float[dim];
        for (int i = 0; i < n; i++)
        {
            batch.Clear();
            batch.Add(tokens[i + 1], i, 0, true);
            head.Forward(batch, hidden.AsSpan(i * dim, dim), step, row, outRow);
            for (int v = 0; v < vocab; v++) Assert.True(Math.Abs(row[v] - all[i * vocab + v]) < 1e-4f, $"position {i}, token {v}");
            for (int d = 0; d < dim; d++) Assert.True(Math.Abs(outRow[d] - outAll[i * dim + d]) < 1e-4f);
        }

        // the head reads the hidden state: another one changes its logits
        using var other = head.CreateCache(1, 32);
        batch.Clear();
        batch.Add(tokens[1], 0, 0, true);
        head.Forward(batch, new float[dim], other, row, outRow);
        Assert.True(Enumerable.Range(0, vocab).Max(v => Math.Abs(row[v] - all[v])) > 1e-3f);
    }

    // the main model's hidden states are the output norm's input to the head: the same rows the logits are made from
    [Fact]
    public void HiddenStatesComeWithTheLogitsTheyMake()
    {
        using var lm = LoadedModel.Load(_m.Qwen2, threads: 1);
        var tokens = Tokens(7, 2);
        using var a = new InferenceSession(lm.Model, 16);
        var plain = a.Evaluate(tokens, 3, default).ToArray();
        using var b = new InferenceSession(lm.Model, 16);
        var hidden = new float[7 * lm.Config.Dim];
        var withHidden = b.Evaluate(tokens, 3, hidden).ToArray();
        Assert.Equal(plain, withHidden);
        Assert.Contains(hidden, h => h != 0);
    }
}
