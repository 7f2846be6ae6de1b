// What generate and chat share: the chat-format flags (--template, --no-think, --think-budget) and the decode loop
// that streams a completion through the reasoning parser, force-feeding </think> when the thinking budget runs out.
using System.CommandLine;
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
        ChatTemplates.Render(Kind, messages, lm.Tokenizer.IdToToken(lm.Tokenizer.BosId), addGenerationPrompt: true, Thinking);

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

internal static class Completion
{
    /// <summary>
    /// Prefills <paramref name="prompt"/> and samples up to <paramref name="maxTokens"/> tokens (forced ones count),
    /// stopping at an end-of-turn token or a full context. Every token's text goes to <paramref name="onText"/> with
    /// what it added to the reasoning and the answer; the last call (decoder and parser flushed) may carry empty text.
    /// </summary>
    public static void Run(InferenceSession session, LoadedModel lm, int[] prompt, Sampler sampler, int maxTokens,
                           ReasoningParser parser, ThinkingBudget? budget, Action<string, ReasoningDelta> onText)
    {
        var decoder = lm.Tokenizer.CreateStreamingDecoder();
        var history = new List<int>(prompt);
        var next = new List<int>();
        if (maxTokens > 0) session.Evaluate(prompt);
        int produced = 0;
        while (produced < maxTokens)
        {
            int id = sampler.Sample(session.LastLogits, CollectionsMarshal.AsSpan(history));
            if (lm.IsEndOfGeneration(id)) break;
            next.Clear();
            next.Add(id);
            Emit(id);
            if (budget?.Next(parser.InReasoning) is int[] close)
                foreach (int t in close) { next.Add(t); Emit(t); }
            history.AddRange(next);
            produced += next.Count;
            if (produced >= maxTokens || session.Tokens.Count + next.Count > session.ContextSize) break;
            session.Evaluate(CollectionsMarshal.AsSpan(next));
        }
        string tail = decoder.Flush();
        var last = parser.Push(tail);
        var flushed = parser.Flush();
        onText(tail, new ReasoningDelta(last.Reasoning + flushed.Reasoning, last.Content + flushed.Content));

        void Emit(int id)
        {
            string piece = decoder.Push(id);
            onText(piece, parser.Push(piece));
        }
    }
}
