// Continuous batching over a fixed set of KV-cache slots. One loop thread runs Schedule() → Forward → Update():
// every running sequence decodes its next token in the same batched forward (the weights are read once per step),
// queued requests join between steps, long prompts are prefilled in chunks mixed with the decodes (so running
// streams keep flowing), and a free slot whose cached tokens share a prefix with a new prompt is reused. With
// speculation each decoding sequence carries its draft in the same batch (its pending token and K draft tokens, a
// logits row for each); Update verifies the rows, keeps the accepted prefix and cuts the slot's cache back past the
// rest, and a sequence whose drafts are seldom accepted stops drafting for a while (Speculator).
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;
using R1Sharp.Tokenization;

namespace R1Sharp.Engine;

public sealed record SchedulerOptions
{
    /// <summary>Sequences decoded together (KV-cache slots).</summary>
    public int Slots { get; init; } = 4;
    /// <summary>Positions per slot: prompt + generated tokens of one request must fit.</summary>
    public int ContextSize { get; init; } = 4096;
    /// <summary>How the KV cache stores keys (and values, unless <see cref="CacheTypeV"/>): F32, F16 (half the memory) or Q8_0.</summary>
    public GgmlType CacheType { get; init; } = GgmlType.F32;
    /// <summary>How the KV cache stores values; null: as <see cref="CacheType"/>.</summary>
    public GgmlType? CacheTypeV { get; init; }
    /// <summary>Requests waiting for a slot beyond which Submit refuses (QueueFullException).</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>Prompt tokens prefilled per step over all sequences (the chunk of chunked prefill).</summary>
    public int PrefillChunk { get; init; } = 512;
    /// <summary>Called on the loop thread after every step.</summary>
    public Action<StepStats>? OnStep { get; init; }
    /// <summary>Called on the loop thread when a request ends, however it ends.</summary>
    public Action<FinishReason>? OnFinish { get; init; }
    /// <summary>Speculative decoding: where drafts come from and how long they may be; null decodes one token per step.</summary>
    public SpeculationOptions? Speculation { get; init; }
}

public sealed class Scheduler : IDisposable
{
    private readonly ICausalLM _model;
    private readonly BpeTokenizer _tokenizer;
    private readonly Func<int, bool> _isEnd;
    private readonly SchedulerOptions _options;
    private readonly KvCache _cache;
    private readonly Slot[] _slots;
    private readonly Batch _batch = new(512);
    private float[] _logits;
    /// <summary>The batch's final hidden states (Count × Dim), where a proposer reads them; else empty.</summary>
    private float[] _hidden = [];
    private readonly bool _wantsHidden;
    /// <summary>A decoding sequence's tokens (its slot's and its pending ones), for its proposer.</summary>
    private readonly List<int> _sequence = new();
    private readonly Channel<Sequence> _incoming = Channel.CreateUnbounded<Sequence>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<Sequence> _waiting = new();
    private readonly List<Sequence> _running = new();
    private readonly List<Sequence> _rows = new();
    private readonly List<Sequence> _done = new();
    private readonly ManualResetEventSlim _unpaused = new(true);
    private readonly Thread _thread;
    private int _queued;
    private int _runningCount;
    private long _clock;
    private volatile bool _accepting = true;
    private volatile bool _cancelAll;
    private volatile bool _stop;

    /// <summary>What a slot's KV cache holds: exactly the tokens fed so far, kept after its request ends for prefix reuse.</summary>
    private sealed class Slot(int index)
    {
        public readonly int Index = index;
        public readonly List<int> Tokens = new();
        public Sequence? Owner;
        public long LastUsed;
        /// <summary>Prompt length of the last request the slot ran (its follow-up repeats nearly all of it).</summary>
        public int PromptLength;
        /// <summary>The slot's proposer and draft-length policy, kept across requests (a draft model's cache follows the slot's).</summary>
        public Speculator? Spec;
    }

    private sealed class Sequence(EngineRequest request, CancellationToken ct, StreamingDecoder decoder)
    {
        public readonly EngineRequest Request = request;
        public readonly CancellationToken Ct = ct;
        public CancellationTokenRegistration CancelSignal;
        public readonly Channel<GenerationChunk> Out = Channel.CreateUnbounded<GenerationChunk>(new UnboundedChannelOptions { SingleWriter = true });
        public readonly Sampler Sampler = new(request.Sampling);
        public readonly LogProbCalculator? LogProbs = request.LogProbs is int top ? new(request.Sampling, top) : null;
        /// <summary>The log probabilities of the token just sampled (when the request asks for them).</summary>
        public (float LogProb, TokenLogProb[] Top) Sampled;
        public readonly StreamingDecoder Decoder = decoder;
        public readonly List<int> Generated = new();
        /// <summary>Generated tokens not yet fed to the model (the last sampled one, plus any forced after it).</summary>
        public readonly List<int> Pending = new();
        /// <summary>Text held back because it may be the start of a stop string.</summary>
        public readonly StringBuilder Held = new();
        public Slot? Slot;
        public int Prefilled;
        public int Cached;
        /// <summary>Prompt tokens in this step's batch.</summary>
        public int Feeding;
        /// <summary>Where this step's tokens of the sequence start in the batch, and how many there are.</summary>
        public int BatchStart, BatchCount;
        /// <summary>Draft tokens in this step's batch (after the pending ones), each with a logits row.</summary>
        public int Drafted;
        /// <summary>This step's first logits row of the sequence.</summary>
        public int Row;
        public FinishReason? Finished;
    }

    public Scheduler(ICausalLM model, BpeTokenizer tokenizer, Func<int, bool> isEndOfGeneration, SchedulerOptions options)
    {
        if (options.Slots < 1) throw new ArgumentException($"the scheduler needs at least one slot (got {options.Slots})");
        if (options.ContextSize < 2) throw new ArgumentException($"the context must hold at least 2 tokens (got {options.ContextSize})");
        if (options.MaxQueue < 0) throw new ArgumentException($"the queue bound must be >= 0 (got {options.MaxQueue})");
        if (options.PrefillChunk < 1) throw new ArgumentException($"the prefill chunk must be >= 1 (got {options.PrefillChunk})");
        _model = model;
        _tokenizer = tokenizer;
        _isEnd = isEndOfGeneration;
        _options = options;
        options.Speculation?.Validate();
        _cache = model.CreateCache(options.Slots, options.ContextSize, options.CacheType, options.CacheTypeV);
        _slots = Enumerable.Range(0, options.Slots).Select(i => new Slot(i)).ToArray();
        if (options.Speculation is { } spec)
            foreach (var slot in _slots) slot.Spec = new Speculator(spec, options.ContextSize);
        _wantsHidden = _slots.Any(sl => sl.Spec?.ReadsHiddenStates == true);
        _logits = new float[(long)options.Slots * model.Config.VocabSize];
        _thread = new Thread(Loop) { Name = "r1sharp-scheduler", IsBackground = true };
        _thread.Start();
    }

    public SchedulerOptions Options => _options;
    /// <summary>The tokenizer its output is decoded with (the vocabulary a request's constraint is built over).</summary>
    public BpeTokenizer Tokenizer => _tokenizer;
    public int ContextSize => _options.ContextSize;
    /// <summary>Requests submitted and not yet given a slot.</summary>
    public int Queued => Volatile.Read(ref _queued);
    /// <summary>Requests holding a slot.</summary>
    public int Running => Volatile.Read(ref _runningCount);

    /// <summary>Draft tokens verified so far (speculative decoding).</summary>
    public long DraftTokens => Interlocked.Read(ref _draftTokens);
    /// <summary>Of those, the ones accepted.</summary>
    public long AcceptedDraftTokens => Interlocked.Read(ref _acceptedDraftTokens);
    private long _draftTokens, _acceptedDraftTokens;

    /// <summary>Slots no request holds (read across threads: exact once the loop is idle).</summary>
    public int IdleSlots => _slots.Count(s => Volatile.Read(ref s.Owner) is null);

    /// <summary>Requests whose caller has cancelled so far (a disconnect is seen here before the next step frees its slot).</summary>
    public int CancelSignals => Volatile.Read(ref _cancelSignals);
    private int _cancelSignals;
    public bool Accepting => _accepting;

    /// <summary>
    /// Queues a request; its output streams back as it is generated. Throws QueueFullException when the queue is
    /// full, InvalidOperationException while shutting down, ArgumentException when the request cannot fit.
    /// Cancelling <paramref name="ct"/> (a client that went away) ends the request and frees its slot at the next step.
    /// </summary>
    public IAsyncEnumerable<GenerationChunk> Submit(EngineRequest request, CancellationToken ct = default) => Submit([request], ct)[0];

    /// <summary>
    /// Queues requests together (the choices of one API request): all or none. Every request is checked first, and
    /// the queue takes them all or throws QueueFullException without queueing any, so a refused group leaves nothing
    /// behind to cancel.
    /// </summary>
    public IAsyncEnumerable<GenerationChunk>[] Submit(IReadOnlyList<EngineRequest> requests, CancellationToken ct = default)
    {
        foreach (var r in requests) Validate(r);
        if (!_accepting) throw new InvalidOperationException("the server is shutting down");
        int n = requests.Count;
        if (Interlocked.Add(ref _queued, n) > _options.MaxQueue + Math.Max(0, _options.Slots - Running))
        {
            Interlocked.Add(ref _queued, -n);
            throw new QueueFullException(n == 1 ? $"{_options.MaxQueue} requests are already waiting; retry later"
                : $"the queue has no room for {n} requests beside the {Queued} already waiting; retry later");
        }
        var streams = new IAsyncEnumerable<GenerationChunk>[n];
        for (int i = 0; i < n; i++)
        {
            var seq = new Sequence(requests[i], ct, _tokenizer.CreateStreamingDecoder(skipControl: true));
            if (ct.CanBeCanceled) seq.CancelSignal = ct.Register(() => Interlocked.Increment(ref _cancelSignals));
            if (!_incoming.Writer.TryWrite(seq))
            {
                Interlocked.Add(ref _queued, -(n - i));
                throw new InvalidOperationException("the server is shutting down");
            }
            streams[i] = seq.Out.Reader.ReadAllAsync(ct);
        }
        return streams;
    }

    /// <summary>Throws ArgumentException when <paramref name="request"/> cannot run here (what Submit checks first).</summary>
    public void Validate(EngineRequest request)
    {
        if (request.Prompt.Length == 0) throw new ArgumentException("the prompt is empty");
        if (request.MaxTokens < 1) throw new ArgumentException($"max tokens must be >= 1 (got {request.MaxTokens})");
        if ((long)request.Prompt.Length + request.MaxTokens > ContextSize)
            throw new ArgumentException($"the prompt ({request.Prompt.Length} tokens) plus max tokens ({request.MaxTokens}) exceeds the context of {ContextSize}");
        foreach (int t in request.Prompt)
            if ((uint)t >= (uint)_model.Config.VocabSize) throw new ArgumentException($"token id {t} is outside the vocabulary");
        if (request.LogProbs is int top && (top < 0 || top > LogProbCalculator.MaxTop))
            throw new ArgumentException($"the number of top log probabilities must be between 0 and {LogProbCalculator.MaxTop} (got {top})");
    }

    /// <summary>Holds the loop between steps (nothing is admitted or decoded) until Resume; for maintenance and tests.</summary>
    public void Pause() => _unpaused.Reset();

    public void Resume() => _unpaused.Set();

    /// <summary>Refuses new requests; running and queued ones go on.</summary>
    public void StopAccepting() => _accepting = false;

    /// <summary>Stops accepting, waits for running and queued requests to finish until <paramref name="ct"/>, then cancels what is left.</summary>
    public async Task DrainAsync(CancellationToken ct)
    {
        StopAccepting();
        try
        {
            while (Running + Queued > 0) await Task.Delay(20, ct);
        }
        catch (OperationCanceledException)
        {
            CancelAll();
        }
    }

    /// <summary>Ends every running and queued request (finish reason Cancelled) at the next step.</summary>
    public void CancelAll()
    {
        _cancelAll = true;
        _unpaused.Set();
        _incoming.Writer.TryWrite(null!); // wakes an idle loop; Drain skips it
    }

    private void Loop()
    {
        while (true)
        {
            Drain();
            if (_cancelAll) CancelEverything();
            if (_running.Count == 0 && _waiting.Count == 0)
            {
                if (_stop) return;
                try { _incoming.Reader.WaitToReadAsync().AsTask().Wait(); } catch (AggregateException) { }
                if (_stop && !_incoming.Reader.TryPeek(out _)) return;
                continue;
            }
            _unpaused.Wait();
            Reap();
            Admit();
            if (_running.Count == 0) continue;

            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            int generated, drafted, accepted;
            var (prefill, decode) = (0, 0);
            try
            {
                (prefill, decode, drafted) = Schedule();
                long rows = (long)_batch.LogitCount * _model.Config.VocabSize;
                if (_logits.Length < rows) _logits = new float[rows];
                if (_wantsHidden && _hidden.Length < (long)_batch.Count * _model.Config.Dim) _hidden = new float[(long)_batch.Capacity * _model.Config.Dim];
                _model.Forward(_batch, _cache, _logits, _wantsHidden ? _hidden : default);
                (generated, accepted) = Update();
            }
            catch (Exception e)
            {
                FailRunning(e);
                continue;
            }
            Interlocked.Add(ref _draftTokens, drafted);
            Interlocked.Add(ref _acceptedDraftTokens, accepted);
            _options.OnStep?.Invoke(new StepStats(prefill, decode, generated, Running, Queued, System.Diagnostics.Stopwatch.GetElapsedTime(start))
            {
                DraftTokens = drafted,
                AcceptedTokens = accepted,
            });
        }
    }

    private void Drain()
    {
        while (_incoming.Reader.TryRead(out var seq))
            if (seq != null) _waiting.Add(seq);
    }

    /// <summary>Drops requests whose caller went away: a running one frees its slot now.</summary>
    private void Reap()
    {
        for (int i = _running.Count - 1; i >= 0; i--)
            if (_running[i].Ct.IsCancellationRequested) Finish(_running[i], FinishReason.Cancelled, i);
        for (int i = _waiting.Count - 1; i >= 0; i--)
            if (_waiting[i].Ct.IsCancellationRequested)
            {
                var seq = _waiting[i];
                _waiting.RemoveAt(i);
                Interlocked.Decrement(ref _queued);
                Complete(seq, "", 0, FinishReason.Cancelled);
            }
    }

    private void CancelEverything()
    {
        for (int i = _running.Count - 1; i >= 0; i--) Finish(_running[i], FinishReason.Cancelled, i);
        foreach (var seq in _waiting)
        {
            Interlocked.Decrement(ref _queued);
            Complete(seq, "", 0, FinishReason.Cancelled);
        }
        _waiting.Clear();
        _cancelAll = false;
    }

    /// <summary>
    /// Gives free slots to waiting requests in arrival order: each to the free slot sharing the longest prefix with its
    /// prompt when that prefix is at least half the prompt (llama.cpp's --slot-prompt-similarity 0.5) or repeats the
    /// slot's last prompt but for a few tokens (a follow-up turn after a long answer), else to the least recently used
    /// free slot, so a shared opening (the BOS token, a system prompt) does not make every new conversation overwrite
    /// the slot of the last one.
    /// </summary>
    private void Admit()
    {
        while (_waiting.Count > 0)
        {
            Slot? best = null, lru = null;
            int bestLcp = -1;
            var prompt = _waiting[0].Request.Prompt;
            foreach (var s in _slots)
            {
                if (s.Owner != null) continue;
                int lcp = CommonPrefix(CollectionsMarshal.AsSpan(s.Tokens), prompt);
                if (lcp > bestLcp || (lcp == bestLcp && s.LastUsed < best!.LastUsed)) { best = s; bestLcp = lcp; }
                if (lru == null || s.LastUsed < lru.LastUsed) lru = s;
            }
            if (best == null) return;
            // a chat template may render the end of the previous prompt differently in the next turn (R1's "<think>\n")
            const int FollowUpSlack = 8;
            if (bestLcp * 2 < prompt.Length && (bestLcp == 0 || bestLcp < best.PromptLength - FollowUpSlack))
                (best, bestLcp) = (lru!, CommonPrefix(CollectionsMarshal.AsSpan(lru!.Tokens), prompt));
            var seq = _waiting[0];
            _waiting.RemoveAt(0);
            Interlocked.Decrement(ref _queued);
            // keep at least one prompt token to run: its logits give the first generated token
            int reuse = Math.Min(bestLcp, prompt.Length - 1);
            _cache.Truncate(best.Index, reuse);
            best.Tokens.RemoveRange(reuse, best.Tokens.Count - reuse);
            best.Owner = seq;
            best.PromptLength = prompt.Length;
            best.Spec?.Start(seq.Request.Sampling);
            seq.Slot = best;
            seq.Prefilled = seq.Cached = reuse;
            _running.Add(seq);
            Volatile.Write(ref _runningCount, _running.Count);
        }
    }

    private static int CommonPrefix(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.CommonPrefixLength(b);

    /// <summary>
    /// Fills the batch: the pending tokens of every decoding sequence (and its draft, where it speculates), then prompt
    /// chunks up to the prefill budget.
    /// </summary>
    private (int Prefill, int Decode, int Drafted) Schedule()
    {
        _batch.Clear();
        _rows.Clear();
        int decode = 0, prefill = 0, drafted = 0, row = 0;
        foreach (var seq in _running)
        {
            seq.Feeding = 0;
            seq.Drafted = 0;
            if (seq.Pending.Count == 0) continue;
            var slot = seq.Slot!;
            int pos = slot.Tokens.Count;
            if (slot.Spec is { } spec)
            {
                // room: the context left after the pending tokens, and no more drafts than tokens the request may still take
                int room = Math.Min(_options.ContextSize - pos - seq.Pending.Count, seq.Request.MaxTokens - seq.Generated.Count - 1);
                _sequence.Clear();
                _sequence.AddRange(slot.Tokens);
                _sequence.AddRange(seq.Pending);
                seq.Drafted = spec.Propose(CollectionsMarshal.AsSpan(_sequence), room);
            }
            seq.BatchStart = _batch.Count;
            seq.BatchCount = seq.Pending.Count + seq.Drafted;
            seq.Row = row;
            for (int i = 0; i < seq.Pending.Count; i++)
                _batch.Add(seq.Pending[i], pos + i, slot.Index, i == seq.Pending.Count - 1);
            for (int i = 0; i < seq.Drafted; i++)
                _batch.Add(slot.Spec!.Draft.Tokens[i], pos + seq.Pending.Count + i, slot.Index, true);
            _rows.Add(seq);
            row += 1 + seq.Drafted;
            decode += seq.Pending.Count;
            drafted += seq.Drafted;
        }
        int budget = _options.PrefillChunk;
        foreach (var seq in _running)
        {
            var prompt = seq.Request.Prompt;
            if (seq.Prefilled == prompt.Length || budget == 0) continue;
            int n = Math.Min(prompt.Length - seq.Prefilled, budget);
            bool last = seq.Prefilled + n == prompt.Length;
            seq.BatchStart = _batch.Count;
            seq.BatchCount = n;
            for (int i = 0; i < n; i++)
                _batch.Add(prompt[seq.Prefilled + i], seq.Prefilled + i, seq.Slot!.Index, last && i == n - 1);
            seq.Feeding = n;
            if (last)
            {
                seq.Row = row++;
                _rows.Add(seq);
            }
            budget -= n;
            prefill += n;
        }
        return (prefill, decode, drafted);
    }

    /// <summary>
    /// Records what the forward fed, hands the hidden states to proposers that read them, then samples every sequence
    /// that asked for logits: one token, or, after a draft, the verified tokens up to the first rejection (the
    /// target's own token there) or all of them and one more; the slot's cache is then cut back past what was not kept.
    /// Returns the tokens generated and the draft tokens accepted.
    /// </summary>
    private (int Generated, int Accepted) Update()
    {
        int dim = _model.Config.Dim;
        foreach (var seq in _running)
        {
            var slot = seq.Slot!;
            int start = slot.Tokens.Count;
            if (seq.Feeding > 0)
            {
                start = seq.Prefilled;
                slot.Tokens.AddRange(seq.Request.Prompt.AsSpan(seq.Prefilled, seq.Feeding));
                seq.Prefilled += seq.Feeding;
            }
            else if (seq.Pending.Count > 0)
            {
                slot.Tokens.AddRange(seq.Pending);
                seq.Pending.Clear();
            }
            else continue;
            if (_wantsHidden && slot.Spec is { ReadsHiddenStates: true } spec)
                spec.Observe(_batch.Tokens.Slice(seq.BatchStart, seq.BatchCount), start, _hidden.AsSpan(seq.BatchStart * dim, seq.BatchCount * dim));
        }
        int vocab = _model.Config.VocabSize;
        _done.Clear();
        int generated = 0, acceptedTotal = 0;
        foreach (var seq in _rows)
        {
            var slot = seq.Slot!;
            int before = seq.Generated.Count;
            int accepted = 0, ended = 0;
            for (int i = 0; ; i++)
            {
                var row = _logits.AsSpan((seq.Row + i) * vocab, vocab);
                // under an active constraint the token is drawn as without speculation (constrained) and matched
                // against the draft: it follows the constrained distribution whatever the draft was
                int token;
                if (i < seq.Drafted && seq.Request.Constraint is not { Active: true })
                {
                    token = slot.Spec!.Verify(seq.Sampler, row, CollectionsMarshal.AsSpan(seq.Generated), i);
                    // a verified token follows the target's distribution, whose figures these are
                    if (seq.LogProbs is { } lp) seq.Sampled = lp.Compute(row, CollectionsMarshal.AsSpan(seq.Generated), token);
                }
                else token = Sample(seq, row);
                if ((seq.Finished = Accept(seq, token)) != null)
                {
                    // a drafted token that ends the request counts as accepted (it is not kept: nothing follows it)
                    if (i < seq.Drafted && token == slot.Spec!.Draft.Tokens[i]) ended = 1;
                    break;
                }
                // the draft token is kept: it is in the cache already; anything forced after it was not drafted
                if (i >= seq.Drafted || token != slot.Spec!.Draft.Tokens[i] || seq.Pending.Count != 1) break;
                slot.Tokens.Add(token);
                seq.Pending.Clear();
                accepted++;
            }
            if (slot.Spec != null)
            {
                slot.Spec.Done(accepted + ended, seq.Generated.Count - before);
                _cache.Truncate(slot.Index, slot.Tokens.Count);
            }
            acceptedTotal += accepted + ended;
            if (seq.Finished != null) _done.Add(seq);
            generated += seq.Generated.Count - before;
        }
        foreach (var seq in _done) Finish(seq, seq.Finished!.Value, _running.IndexOf(seq));
        return (generated, acceptedTotal);
    }

    /// <summary>
    /// The next token of a sequence from its row of logits: the sampler's pick, or, when the request's constraint
    /// refuses it, a pick from the row with every refused token masked out (see <see cref="ITokenConstraint"/>).
    /// </summary>
    private int Sample(Sequence seq, Span<float> logits)
    {
        var history = CollectionsMarshal.AsSpan(seq.Generated);
        int token = seq.Sampler.Sample(logits, history);
        var c = seq.Request.Constraint is { Active: true } active ? active : null;
        bool filled = false;
        if (c is not null && !c.IsAllowed(token))
        {
            FillMask(c, logits.Length, ref _mask);
            filled = true;
            // the chain over the allowed tokens only, from the first draw's sorted row: the same draw as over the
            // masked row, without sorting the vocabulary again
            token = seq.Sampler.Redraw(logits, history, _mask.AsSpan(0, (logits.Length + 63) >> 6));
        }
        if (seq.LogProbs is { } lp)
        {
            // the distribution drawn from is the masked one even when the first draw was allowed: mask for the report
            if (c is not null)
            {
                if (!filled) FillMask(c, logits.Length, ref _mask);
                MaskRefused(_mask, logits);
            }
            seq.Sampled = lp.Compute(logits, history, token);
        }
        return token;
    }

    private ulong[] _mask = [];

    /// <summary>The tokens <paramref name="c"/> allows, into <paramref name="mask"/> (grown to the row's words).</summary>
    private static void FillMask(ITokenConstraint c, int vocab, ref ulong[] mask)
    {
        int words = (vocab + 63) >> 6;
        if (mask.Length < words) mask = new ulong[words];
        var m = mask.AsSpan(0, words);
        m.Clear();
        c.FillMask(m);
    }

    /// <summary>Sets the logits of the tokens <paramref name="mask"/> leaves out to -infinity.</summary>
    internal static void MaskRefused(ReadOnlySpan<ulong> mask, Span<float> logits)
    {
        int words = (logits.Length + 63) >> 6;
        var m = mask[..words];
        for (int w = 0; w < words; w++)
        {
            ulong refused = ~m[w];
            while (refused != 0)
            {
                int t = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(refused);
                if (t >= logits.Length) break;
                logits[t] = float.NegativeInfinity;
                refused &= refused - 1;
            }
        }
    }

    /// <summary>
    /// Takes a sampled token (and any the request's Steer forces after it): checks end of generation, stop strings
    /// and the token limit, streams the text that is safe to send, and queues the tokens to be fed next step.
    /// </summary>
    private FinishReason? Accept(Sequence seq, int sampled)
    {
        var req = seq.Request;
        var text = new StringBuilder();
        int count = 0;
        List<GeneratedToken>? logProbs = seq.LogProbs is null ? null : [];
        var queue = new Queue<int>();
        queue.Enqueue(sampled);
        while (queue.TryDequeue(out int token))
        {
            if (!req.IgnoreEos && _isEnd(token))
            {
                text.Append(seq.Held).Append(seq.Decoder.Flush());
                seq.Held.Clear();
                seq.Pending.Clear();
                Emit(seq, text.ToString(), count, logProbs);
                return FinishReason.Stop;
            }
            seq.Generated.Add(token);
            seq.Pending.Add(token);
            count++;
            string piece = seq.Decoder.Push(token);
            // the first token is the sampled one; the rest were forced
            logProbs?.Add(count == 1 ? new GeneratedToken(token, piece, seq.Sampled.LogProb, seq.Sampled.Top) : new GeneratedToken(token, piece, 0, []));
            req.Constraint?.Accept(token, piece);
            if (req.Steer?.Invoke(token, piece) is { } forced)
                foreach (int f in forced) queue.Enqueue(f);
            seq.Held.Append(piece);
            if (req.StopStrings.Count > 0 && FindStop(seq.Held.ToString(), req.StopStrings) is int at)
            {
                text.Append(seq.Held.ToString(0, at));
                seq.Held.Clear();
                Emit(seq, text.ToString(), count, logProbs);
                return FinishReason.Stop;
            }
            if (seq.Generated.Count >= req.MaxTokens)
            {
                text.Append(seq.Held).Append(seq.Decoder.Flush());
                seq.Held.Clear();
                Emit(seq, text.ToString(), count, logProbs);
                return FinishReason.Length;
            }
            int keep = req.StopStrings.Count == 0 ? 0 : HeldBack(seq.Held.ToString(), req.StopStrings);
            text.Append(seq.Held.ToString(0, seq.Held.Length - keep));
            seq.Held.Remove(0, seq.Held.Length - keep);
        }
        Emit(seq, text.ToString(), count, logProbs);
        return null;
    }

    private static int? FindStop(string s, IReadOnlyList<string> stops)
    {
        int best = -1;
        foreach (var stop in stops)
        {
            if (stop.Length == 0) continue;
            int i = s.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best < 0 ? null : best;
    }

    /// <summary>Length of the longest suffix of <paramref name="s"/> that begins some stop string.</summary>
    private static int HeldBack(string s, IReadOnlyList<string> stops)
    {
        int keep = 0;
        foreach (var stop in stops)
            for (int k = Math.Min(stop.Length - 1, s.Length); k > keep; k--)
                if (string.CompareOrdinal(s, s.Length - k, stop, 0, k) == 0) { keep = k; break; }
        return keep;
    }

    private static void Emit(Sequence seq, string text, int tokens, List<GeneratedToken>? logProbs)
    {
        if (text.Length > 0 || tokens > 0) seq.Out.Writer.TryWrite(new GenerationChunk(text, tokens) { LogProbs = logProbs });
    }

    private void Finish(Sequence seq, FinishReason reason, int runningIndex)
    {
        _running.RemoveAt(runningIndex);
        var slot = seq.Slot!;
        slot.Owner = null;
        slot.LastUsed = ++_clock;
        Complete(seq, "", 0, reason);
        // published last, so whoever sees the slot free also sees the request finished
        Volatile.Write(ref _runningCount, _running.Count);
    }

    private void Complete(Sequence seq, string text, int tokens, FinishReason reason)
    {
        seq.CancelSignal.Dispose();
        _options.OnFinish?.Invoke(reason);
        var usage = new GenerationUsage(seq.Request.Prompt.Length, seq.Cached, seq.Generated.Count);
        seq.Out.Writer.TryWrite(new GenerationChunk(text, tokens, reason, usage));
        seq.Out.Writer.TryComplete();
    }

    /// <summary>A failed forward leaves the caches of the batch's slots unknown: forget them and fail their requests.</summary>
    private void FailRunning(Exception e)
    {
        foreach (var seq in _running)
        {
            var slot = seq.Slot!;
            _cache.Truncate(slot.Index, 0);
            slot.Tokens.Clear();
            slot.Owner = null;
            seq.Out.Writer.TryComplete(e);
        }
        _running.Clear();
        Volatile.Write(ref _runningCount, 0);
    }

    public void Dispose()
    {
        if (_stop) return;
        _accepting = false;
        _stop = true;
        CancelAll();
        _incoming.Writer.TryComplete();
        _thread.Join();
        _cache.Dispose();
        foreach (var slot in _slots) slot.Spec?.Dispose();
        _unpaused.Dispose();
    }
}
