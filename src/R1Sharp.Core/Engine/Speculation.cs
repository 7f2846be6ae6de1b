// Speculative decoding: a proposer drafts up to K tokens for a sequence, the target runs them in one batched forward
// (several positions of one slot, logits for each), the sampler accepts a prefix (Sampler.Verify: greedy output
// token for token as without speculation, sampled output in the target's distribution exactly), and the KV cache is
// cut back past the rejected tokens. The proposer is the one seam: a draft model, n-gram lookup or an MTP head
// (DraftModelProposer, NgramProposer, MtpProposer); the decode loops (InferenceSession's callers and the Scheduler)
// hold a Speculator per sequence, which sizes each draft to the acceptance seen so far.
using R1Sharp.Sampling;

namespace R1Sharp.Engine;

/// <summary>Proposes draft tokens for one sequence slot (it may keep state, e.g. a draft model's KV cache).</summary>
public interface IDraftProposer : IDisposable
{
    /// <summary>
    /// A new sequence starts on this proposer; <paramref name="sampling"/> is how the target samples it (a draft that
    /// samples follows it, with a random stream of its own).
    /// </summary>
    void Start(SamplingParams sampling);

    /// <summary>
    /// Proposes up to <see cref="Draft.Max"/> tokens expected to follow <paramref name="tokens"/> (the whole sequence:
    /// prompt and output so far; the target has run all but its last token or last few forced ones) into
    /// <paramref name="draft"/>, which arrives empty. Proposing none is always allowed.
    /// </summary>
    void Propose(ReadOnlySpan<int> tokens, Draft draft);

    /// <summary>The target accepted <paramref name="accepted"/> of the <paramref name="proposed"/> tokens last proposed.</summary>
    void Accepted(int proposed, int accepted);
}

/// <summary>A proposer that reads the target's final hidden states (an MTP head).</summary>
public interface IHiddenStateObserver
{
    /// <summary>
    /// The target has just run <paramref name="tokens"/> at positions <paramref name="startPos"/>.. of this proposer's
    /// sequence; <paramref name="hidden"/> holds their final hidden states (tokens.Length × Dim, after the output norm).
    /// </summary>
    void Observe(ReadOnlySpan<int> tokens, int startPos, ReadOnlySpan<float> hidden);
}

/// <summary>Where drafts come from (one per engine): makes the proposer of each sequence slot.</summary>
public interface IDraftSource : IDisposable
{
    /// <summary>A short name for logs and figures: "draft-model", "ngram", "mtp".</summary>
    string Name { get; }

    /// <summary>A proposer for one slot, whose sequences hold up to <paramref name="contextSize"/> tokens.</summary>
    IDraftProposer CreateProposer(int contextSize);
}

/// <summary>How a decode loop speculates.</summary>
public sealed record SpeculationOptions
{
    public required IDraftSource Source { get; init; }
    /// <summary>Most draft tokens verified in one pass (K).</summary>
    public int DraftMax { get; init; } = 8;
    /// <summary>
    /// A sequence whose drafts are accepted less often than this (a running average) stops drafting for a while: its
    /// verification rows would cost more than the tokens they save.
    /// </summary>
    public double MinAcceptRate { get; init; } = 0.3;

    public void Validate()
    {
        if (DraftMax < 1) throw new ArgumentException($"--draft-max must be at least 1 (got {DraftMax})");
        if (!(MinAcceptRate >= 0 && MinAcceptRate < 1)) throw new ArgumentException($"the minimum acceptance rate must be in [0, 1) (got {MinAcceptRate})");
    }
}

/// <summary>Draft tokens of one proposal, each with the distribution it was drawn from (null: chosen without randomness).</summary>
public sealed class Draft
{
    private readonly int[] _tokens;
    private readonly TokenDistribution?[] _q;

    public Draft(int capacity)
    {
        _tokens = new int[capacity];
        _q = new TokenDistribution?[capacity];
    }

    public int Capacity => _tokens.Length;
    /// <summary>The most tokens this proposal may hold.</summary>
    public int Max { get; private set; }
    public int Count { get; private set; }
    public bool IsFull => Count >= Max;
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Count);

    /// <summary>The distribution draft token <paramref name="i"/> was drawn from; null where it was chosen without randomness.</summary>
    public TokenDistribution? Distribution(int i) => _q[i];

    /// <summary>Appends a token (drawn from <paramref name="q"/>, which the proposer keeps unchanged until the draft is verified).</summary>
    public void Add(int token, TokenDistribution? q = null)
    {
        if (IsFull) throw new InvalidOperationException($"the draft already holds its {Max} tokens");
        _tokens[Count] = token;
        _q[Count] = q;
        Count++;
    }

    /// <summary>Empties the draft and sets how many tokens the next proposal may hold.</summary>
    public void Reset(int max)
    {
        Max = Math.Clamp(max, 0, Capacity);
        Array.Clear(_q, 0, Count);
        Count = 0;
    }
}

/// <summary>
/// The speculation of one sequence slot: asks its proposer for a draft of adaptive length, verifies the target's logits
/// rows through the sampler, and counts. The draft length K follows Hugging Face's heuristic schedule (+2 after a fully
/// accepted draft, −1 otherwise, within 1..DraftMax); a sequence whose acceptance stays below MinAcceptRate stops
/// drafting for 16 tokens, then 32, 64 ... up to 512 while it stays poor. A proposal of nothing (the draft was not
/// confident) counts as a draft with nothing accepted: a proposer that keeps declining is not asked for a while either.
/// </summary>
public sealed class Speculator : IDisposable
{
    private readonly SpeculationOptions _options;
    private int _k;
    private double _rate;
    private int _passes;
    private int _pauseLeft;
    private int _pauseSpan = MinPause;
    /// <summary>The proposer was asked for this pass's draft.</summary>
    private bool _asked;

    private const int MinPause = 16, MaxPause = 512;
    /// <summary>Weight of the last pass in the running acceptance rate.</summary>
    private const double RateWeight = 0.25;

    public Speculator(SpeculationOptions options, int contextSize)
    {
        options.Validate();
        _options = options;
        Proposer = options.Source.CreateProposer(contextSize);
        Draft = new Draft(options.DraftMax);
        Reset();
    }

    public IDraftProposer Proposer { get; }
    /// <summary>The current proposal (empty when the last Propose drafted nothing).</summary>
    public Draft Draft { get; }
    /// <summary>Whether the proposer reads the target's hidden states (<see cref="Observe"/>).</summary>
    public bool ReadsHiddenStates => Proposer is IHiddenStateObserver;

    /// <summary>Draft tokens proposed and verified, since construction.</summary>
    public long Drafted { get; private set; }
    /// <summary>Draft tokens the target accepted, since construction.</summary>
    public long Accepted { get; private set; }
    /// <summary>Verification passes that carried a draft, since construction.</summary>
    public long Passes { get; private set; }

    /// <summary>A new sequence starts on this slot: its sampling parameters; the draft length starts afresh.</summary>
    public void Start(SamplingParams sampling)
    {
        Proposer.Start(sampling);
        Reset();
    }

    private void Reset()
    {
        _k = Math.Min(_options.DraftMax, 4);
        _rate = 1;
        _passes = 0;
        _pauseLeft = 0;
        _pauseSpan = MinPause;
        Draft.Reset(0);
    }

    /// <summary>
    /// Drafts tokens to follow <paramref name="tokens"/>, at most <paramref name="room"/> (what the context and the token
    /// limit leave); returns how many (0 while the sequence pauses).
    /// </summary>
    public int Propose(ReadOnlySpan<int> tokens, int room)
    {
        Draft.Reset(Math.Min(_k, room));
        _asked = _pauseLeft == 0 && Draft.Max > 0;
        if (!_asked) return 0;
        Proposer.Propose(tokens, Draft);
        return Draft.Count;
    }

    /// <summary>The token to go on with at draft position <paramref name="i"/>, from the target's logits row there.</summary>
    public int Verify(Sampler sampler, ReadOnlySpan<float> logits, ReadOnlySpan<int> history, int i) =>
        sampler.Verify(logits, history, Draft.Tokens[i], Draft.Distribution(i));

    /// <summary>
    /// After a pass: <paramref name="accepted"/> of the draft's tokens were accepted and the sequence grew by
    /// <paramref name="generated"/> tokens. Adapts the draft length and the pause.
    /// </summary>
    public void Done(int accepted, int generated)
    {
        int drafted = Draft.Count;
        bool asked = _asked;
        _asked = false;
        if (drafted == 0)
        {
            _pauseLeft = Math.Max(0, _pauseLeft - generated);
            if (!asked) return;
        }
        else
        {
            Drafted += drafted;
            Accepted += accepted;
            Passes++;
            Proposer.Accepted(drafted, accepted);
            _k = accepted == drafted ? Math.Min(_k + 2, _options.DraftMax) : Math.Max(1, _k - 1);
        }
        _passes++;
        _rate = (1 - RateWeight) * _rate + RateWeight * (drafted == 0 ? 0 : (double)accepted / drafted);
        if (_rate >= _options.MinAcceptRate)
        {
            if (_rate >= 2 * _options.MinAcceptRate) _pauseSpan = MinPause;
            return;
        }
        if (_passes < 4) return;
        _pauseLeft = _pauseSpan;
        _pauseSpan = Math.Min(2 * _pauseSpan, MaxPause);
        // after the pause, a few passes decide again
        _rate = 2 * _options.MinAcceptRate;
        _passes = 0;
    }

    /// <summary>Hands the target's hidden states of tokens it just ran to a proposer that reads them.</summary>
    public void Observe(ReadOnlySpan<int> tokens, int startPos, ReadOnlySpan<float> hidden)
    {
        if (Proposer is IHiddenStateObserver o) o.Observe(tokens, startPos, hidden);
    }

    public void Dispose() => Proposer.Dispose();
}
