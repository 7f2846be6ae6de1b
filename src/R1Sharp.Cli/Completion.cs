// What generate and chat share: the chat-format flags (--template, --no-think, --think-budget) and the decode loop
// that streams a completion through the reasoning parser, force-feeding </think> when the thinking budget runs out.
using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Sampling;

namespace R1Sharp.Cli;

/// <summary>The chat format of a run: which template, thinking on or off, and the reasoning-token budget.</summary>
internal sealed record ChatSetup(ChatTemplateKind Kind, bool Thinking, int? ThinkBudget)
{
    /// <summary>The model's output starts inside a think block.</summary>
    public bool StartsInReasoning => ChatTemplates.PromptOpensThink(Kind, Thinking);

    public string Render(IReadOnlyList<ChatMessage> messages, LoadedModel lm) =>
        ChatTemplates.Render(Kind, messages, lm.Tokenizer.BosText, addGenerationPrompt: true, Thinking);

    public ThinkingBudget? CreateBudget(LoadedModel lm) =>
        ThinkBudget is int n ? new ThinkingBudget(n, lm.Tokenizer.Encode("\n" + R1ChatTemplate.ThinkClose + "\n\n")) : null;
}

internal sealed class ChatFormatOptions
{
    private readonly Option<string> _template = new("--template")
    {
        Description = "chat format: r1, chatml or llama3 (default: detected from the model's tokenizer.chat_template)",
    };
    private readonly Option<bool> _noThink = new("--no-think")
    {
        Description = "thinking off: the R1 prompt ends with an empty <think>\\n\\n</think>\\n\\n and the model answers at once",
    };
    private readonly Option<int?> _thinkBudget = new("--think-budget")
    {
        Description = "at most N reasoning tokens, then \\n</think>\\n\\n is forced and the model answers (0: as --no-think)",
    };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(_template);
        cmd.Options.Add(_noThink);
        cmd.Options.Add(_thinkBudget);
    }

    /// <summary>True when the user set a flag that only means something with the chat template.</summary>
    public bool NeedsTemplate(ParseResult r) => r.GetValue(_template) is not null || r.GetValue(_noThink);

    /// <summary>Checks the flags before the model is loaded; <see cref="Resolve"/> finishes once it is.</summary>
    public (ChatTemplateKind? Kind, bool Thinking, int? Budget) Read(ParseResult r)
    {
        ChatTemplateKind? kind = null;
        if (r.GetValue(_template) is string name)
            kind = ChatTemplates.TryParse(name, out var k) ? k
                : throw new ArgumentException($"--template: '{name}' is not a chat format; use r1, chatml or llama3");
        int? budget = r.GetValue(_thinkBudget);
        if (budget < 0) throw new ArgumentException("--think-budget must be >= 0");
        bool thinking = !r.GetValue(_noThink) && budget != 0;
        return (kind, thinking, thinking ? budget : null);
    }

    public static ChatSetup Resolve((ChatTemplateKind? Kind, bool Thinking, int? Budget) flags, LoadedModel lm) =>
        new(flags.Kind ?? ChatTemplates.Detect(lm.Tokenizer.Data.ChatTemplate, t => lm.Tokenizer.TokenToId(t) is not null),
            flags.Thinking, flags.Budget);
}

/// <summary>What a completion took: tokens and time, split into the prompt and the generation.</summary>
internal sealed record CompletionStats(int PromptTokens, int CachedTokens, int GeneratedTokens, TimeSpan Prefill, TimeSpan Decode,
                                       bool Cancelled)
{
    /// <summary>Generated tokens per second of decoding (the prefill excluded).</summary>
    public double TokensPerSecond => Decode.TotalSeconds > 0 ? GeneratedTokens / Decode.TotalSeconds : 0;
    /// <summary>Forward passes of the decode (each verifies a draft where the run speculates).</summary>
    public int Passes { get; init; }
    /// <summary>Draft tokens verified and accepted (speculative decoding).</summary>
    public long Drafted { get; init; }
    public long Accepted { get; init; }
}

internal static class Completion
{
    /// <summary>
    /// Prefills <paramref name="prompt"/> and samples up to <paramref name="maxTokens"/> tokens (forced ones count),
    /// stopping at an end-of-turn token, a full context or <paramref name="ct"/>. What the session already holds of the
    /// prompt (a shared prefix, e.g. the earlier turns of a chat) is reused, not run again. Every token's text goes to
    /// <paramref name="onText"/> with what it added to the reasoning and the answer; the last call (decoder and parser
    /// flushed) may carry empty text. With <paramref name="spec"/>, each pass verifies a draft (the same tokens come
    /// out; see <see cref="Speculator"/>). <paramref name="ignoreEos"/> goes on past end-of-generation tokens (benchmarks).
    /// </summary>
    public static CompletionStats Run(InferenceSession session, LoadedModel lm, int[] prompt, Sampler sampler, int maxTokens,
                                      ReasoningParser parser, ThinkingBudget? budget, Action<string, ReasoningDelta> onText,
                                      CancellationToken ct = default, Speculator? spec = null, bool ignoreEos = false)
    {
        var decoder = lm.Tokenizer.CreateStreamingDecoder();
        var history = new List<int>(prompt);
        var next = new List<int>();
        var feed = new List<int>();
        float[] hidden = [];
        long start = Stopwatch.GetTimestamp();
        long drafted0 = spec?.Drafted ?? 0, accepted0 = spec?.Accepted ?? 0;
        spec?.Start(sampler.Params);
        // keep at least one prompt token to run: its logits give the first generated token
        int cached = 0;
        while (cached < prompt.Length - 1 && cached < session.Tokens.Count && session.Tokens[cached] == prompt[cached]) cached++;
        session.Truncate(cached);
        int drafted = 0, passes = 0;
        ReadOnlySpan<float> rows = default;
        if (maxTokens > 0) rows = Evaluate(prompt.AsSpan(cached), 1);
        var prefill = Stopwatch.GetElapsedTime(start);
        start = Stopwatch.GetTimestamp();
        passes = 0; // the decode's passes only
        int produced = 0;
        while (produced < maxTokens && !ct.IsCancellationRequested)
        {
            // the rows of this pass: the pending token's, then one per draft token
            bool stop = false;
            int accepted = 0, ended = 0, before = produced;
            next.Clear();
            for (int i = 0; ; i++)
            {
                var row = rows.Slice(i * session.VocabSize, session.VocabSize);
                var h = CollectionsMarshal.AsSpan(history);
                int id = i < drafted ? spec!.Verify(sampler, row, h, i) : sampler.Sample(row, h);
                if (!ignoreEos && lm.IsEndOfGeneration(id))
                {
                    // a drafted end counts as accepted (nothing of it is kept: generation ends)
                    if (i < drafted && id == spec!.Draft.Tokens[i]) ended = 1;
                    stop = true;
                    break;
                }
                next.Clear();
                next.Add(id);
                Emit(id);
                if (budget?.Next(parser.InReasoning) is int[] close)
                    foreach (int t in close) { next.Add(t); Emit(t); }
                history.AddRange(next);
                produced += next.Count;
                // a draft token accepted is in the cache already; tokens forced after it were not drafted
                if (i >= drafted || id != spec!.Draft.Tokens[i] || next.Count != 1 || produced >= maxTokens || ct.IsCancellationRequested) break;
                accepted++;
                next.Clear();
            }
            if (spec != null)
            {
                // the cache holds the pending tokens and the whole draft: keep what was accepted
                session.Truncate(session.Tokens.Count - drafted + accepted);
                spec.Done(accepted + ended, produced - before);
            }
            if (stop || produced >= maxTokens || session.Tokens.Count + next.Count > session.ContextSize || ct.IsCancellationRequested) break;
            drafted = 0;
            if (spec != null)
            {
                int room = Math.Min(session.ContextSize - session.Tokens.Count - next.Count, maxTokens - produced - 1);
                drafted = spec.Propose(CollectionsMarshal.AsSpan(history), room);
            }
            feed.Clear();
            feed.AddRange(next);
            if (drafted > 0) feed.AddRange(spec!.Draft.Tokens);
            rows = Evaluate(CollectionsMarshal.AsSpan(feed), 1 + drafted);
        }
        string tail = decoder.Flush();
        var last = parser.Push(tail);
        var flushed = parser.Flush();
        onText(tail, new ReasoningDelta(last.Reasoning + flushed.Reasoning, last.Content + flushed.Content));
        return new CompletionStats(prompt.Length, cached, produced, prefill, Stopwatch.GetElapsedTime(start), ct.IsCancellationRequested)
        {
            Passes = passes,
            Drafted = (spec?.Drafted ?? 0) - drafted0,
            Accepted = (spec?.Accepted ?? 0) - accepted0,
        };

        void Emit(int id)
        {
            string piece = decoder.Push(id);
            onText(piece, parser.Push(piece));
        }

        // runs tokens and returns the logits of the last `count` of them; hands the hidden states to an MTP proposer
        ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens, int count)
        {
            passes++;
            if (spec is not { ReadsHiddenStates: true }) return session.Evaluate(tokens, count, default);
            int dim = session.Model.Config.Dim, startPos = session.Tokens.Count;
            if (hidden.Length < tokens.Length * dim) hidden = new float[tokens.Length * dim];
            var r = session.Evaluate(tokens, count, hidden);
            spec.Observe(tokens, startPos, hidden.AsSpan(0, tokens.Length * dim));
            return r;
        }
    }
}
