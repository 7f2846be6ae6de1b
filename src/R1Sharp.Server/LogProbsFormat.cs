// The logprobs of a response in OpenAI's two shapes: chat's choices[].logprobs.content[] (token, logprob, bytes,
// top_logprobs), with the reasoning's tokens in reasoning_content beside it, and the completions endpoint's legacy
// parallel lists (tokens, token_logprobs, top_logprobs, text_offset).
using System.Text;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Server.Protocol;
using R1Sharp.Tokenization;

namespace R1Sharp.Server;

internal static class LogProbsFormat
{
    /// <summary>The top count a chat request asks for (null: none), checked as OpenAI checks it.</summary>
    public static int? ChatRequest(ChatCompletionRequest req)
    {
        if (req.TopLogprobs is int top && (top < 0 || top > Sampling.LogProbCalculator.MaxTop))
            throw ApiException.Invalid($"top_logprobs must be between 0 and {Sampling.LogProbCalculator.MaxTop} (got {top})", "top_logprobs");
        if (req.Logprobs != true)
        {
            if (req.TopLogprobs is not null) throw ApiException.Invalid("top_logprobs needs logprobs: true", "top_logprobs");
            return null;
        }
        return req.TopLogprobs ?? 0;
    }

    /// <summary>The top count a completions request asks for (null: none).</summary>
    public static int? CompletionRequest(CompletionRequest req)
    {
        if (req.Logprobs is int top && (top < 0 || top > Sampling.LogProbCalculator.MaxTop))
            throw ApiException.Invalid($"logprobs must be between 0 and {Sampling.LogProbCalculator.MaxTop} (got {top})", "logprobs");
        return req.Logprobs;
    }

    /// <summary>A token's text as the API shows it: its bytes as UTF-8, a lone piece of a character as U+FFFD.</summary>
    public static string Text(BpeTokenizer tok, int token) => Encoding.UTF8.GetString(tok.TokenBytes(token));

    private static List<int> Bytes(BpeTokenizer tok, int token)
    {
        var b = tok.TokenBytes(token);
        var list = new List<int>(b.Length);
        foreach (byte x in b) list.Add(x);
        return list;
    }

    public static TokenLogprob Chat(BpeTokenizer tok, GeneratedToken t) => new()
    {
        Token = Text(tok, t.Token),
        Logprob = t.LogProb,
        Bytes = Bytes(tok, t.Token),
        TopLogprobs = [.. t.Top.Select(a => new TopLogprob { Token = Text(tok, a.Token), Logprob = a.LogProb, Bytes = Bytes(tok, a.Token) })],
    };

    /// <summary>Appends one chunk's tokens to the completions form; <paramref name="offset"/> is where the next token's text starts.</summary>
    public static void AppendLegacy(BpeTokenizer tok, CompletionLogprobs into, IEnumerable<GeneratedToken> tokens, ref int offset)
    {
        foreach (var t in tokens)
        {
            into.Tokens.Add(Text(tok, t.Token));
            into.TokenLogprobs.Add(t.LogProb);
            var top = new Dictionary<string, float>();
            // two tokens with the same text (a lone byte and a control token) keep the more likely figure
            foreach (var a in t.Top) top.TryAdd(Text(tok, a.Token), a.LogProb);
            into.TopLogprobs.Add(top);
            into.TextOffset.Add(offset);
            offset += t.Text.Length;
        }
    }

    public static CompletionLogprobs NewLegacy() => new() { Tokens = [], TokenLogprobs = [], TopLogprobs = [], TextOffset = [] };
}

/// <summary>
/// Splits a chat choice's tokens between the reasoning and the answer by their text, as the output's reasoning
/// parser splits the text: a token that opens, continues or closes the think block is reasoning.
/// </summary>
internal sealed class LogProbsSplitter(BpeTokenizer tok, bool startsInReasoning)
{
    private readonly ReasoningParser _parser = new(startsInReasoning);

    /// <summary>Every token so far, reasoning and answer.</summary>
    public readonly List<TokenLogprob> Reasoning = [], Content = [];

    /// <summary>Takes one chunk's tokens; returns those of the reasoning and those of the answer.</summary>
    public (List<TokenLogprob> Reasoning, List<TokenLogprob> Content) Take(IReadOnlyList<GeneratedToken>? tokens)
    {
        List<TokenLogprob> reasoning = [], content = [];
        foreach (var t in tokens ?? [])
        {
            bool before = _parser.InReasoning;
            _parser.Push(t.Text);
            (before || _parser.InReasoning ? reasoning : content).Add(LogProbsFormat.Chat(tok, t));
        }
        Reasoning.AddRange(reasoning);
        Content.AddRange(content);
        return (reasoning, content);
    }

    /// <summary>The whole choice's logprobs object.</summary>
    public ChatLogprobs Total() => new() { Content = Content, ReasoningContent = Reasoning.Count > 0 ? Reasoning : null };
}
