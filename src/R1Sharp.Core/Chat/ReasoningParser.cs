// Splits a reasoning model's streamed output into its chain of thought (inside <think>...</think>) and its answer,
// as DeepSeek's API returns them in reasoning_content and content. Decoded text goes in piece by piece; what comes
// out depends only on the text, never on how it was cut into pieces.
//
// The rules follow llama.cpp's deepseek reasoning format (common/chat-parser.cpp, try_parse_reasoning):
// - Whitespace around the reasoning is dropped (llama.cpp strips it): the "\n" after <think>, the "\n" before
//   </think>. After </think> the whitespace up to the answer ("\n\n") is dropped too, as DeepSeek's API and llama.cpp
//   do. Whitespace is ASCII (space, \t, \n, \v, \f, \r), llama.cpp's isspace. Whitespace inside the texts is kept.
// - A <think> is a tag only at the start of the output (after whitespace) or right after a </think>; it is skipped,
//   so an explicit <think> behind a prompt that already opened one is not reasoning text. Anywhere else <think> is
//   plain text.
// - With thinking off (startsInReasoning false) the output is answer, unless it starts with <think>: then the model
//   reasoned after all, and that block is reported as reasoning, as llama.cpp does.
// - In the answer a </think> is plain text; in the reasoning a second <think> is plain text.
// - A think block never closed is all reasoning (Flush).
// To stay chunking-independent the parser holds back a possible partial tag ("</th") and, inside the reasoning,
// trailing whitespace that may turn out to precede </think>; everything else is emitted at once.
using System.Text;

namespace R1Sharp.Chat;

/// <summary>What one push adds to the reasoning and to the answer.</summary>
public readonly record struct ReasoningDelta(string Reasoning, string Content)
{
    public static ReasoningDelta Empty { get; } = new("", "");
    public bool IsEmpty => string.IsNullOrEmpty(Reasoning) && string.IsNullOrEmpty(Content);
}

public sealed class ReasoningParser
{
    private const string Open = "<think>";
    private const string Close = "</think>";

    private readonly StringBuilder _reasoning = new();
    private readonly StringBuilder _content = new();
    private readonly StringBuilder _held = new();
    // At the start of a section (the output, or the answer after </think>) whitespace is skipped and a <think>
    // is still recognized; _openAllowed stays true only until something else is seen.
    private bool _atStart = true;
    private bool _openAllowed = true;

    /// <param name="startsInReasoning">The prompt left the model inside a think block (see <see cref="ChatTemplates.PromptOpensThink"/>).</param>
    public ReasoningParser(bool startsInReasoning) => InReasoning = startsInReasoning;

    /// <summary>True while the output is inside a think block.</summary>
    public bool InReasoning { get; private set; }
    /// <summary>All reasoning emitted so far.</summary>
    public string Reasoning => _reasoning.ToString();
    /// <summary>All answer text emitted so far.</summary>
    public string Content => _content.ToString();

    /// <summary>Takes the next decoded text and returns what can be emitted now.</summary>
    public ReasoningDelta Push(string text)
    {
        if (text.Length == 0) return ReasoningDelta.Empty;
        string s = _held.Length == 0 ? text : _held.Append(text).ToString();
        _held.Clear();
        int r0 = _reasoning.Length, c0 = _content.Length;
        int i = 0;
        while (i < s.Length)
        {
            if (_atStart)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i == s.Length) break;
                if (_openAllowed)
                {
                    int m = MatchAt(s, i, Open);
                    if (m < 0) { _held.Append(s, i, s.Length - i); break; }   // a partial <think>: wait for more
                    if (m > 0)
                    {
                        i += Open.Length;
                        InReasoning = true;
                        _openAllowed = false;
                        continue;   // still at the start: the whitespace after <think> goes too
                    }
                }
                _atStart = false;
                _openAllowed = false;
            }
            if (!InReasoning)
            {
                _content.Append(s, i, s.Length - i);
                break;
            }
            int close = s.IndexOf(Close, i, StringComparison.Ordinal);
            if (close >= 0)
            {
                _reasoning.Append(s, i, TrimEnd(s, i, close) - i);
                i = close + Close.Length;
                InReasoning = false;
                _atStart = _openAllowed = true;
                continue;
            }
            // hold a partial </think> at the end, and the whitespace before it
            int hold = s.Length - PartialSuffix(s, i, Close);
            int end = TrimEnd(s, i, hold);
            _reasoning.Append(s, i, end - i);
            _held.Append(s, end, s.Length - end);
            break;
        }
        return Delta(r0, c0);
    }

    /// <summary>The end of the output: held text is emitted (a partial tag was text after all), a think block never closed is all reasoning.</summary>
    public ReasoningDelta Flush()
    {
        int r0 = _reasoning.Length, c0 = _content.Length;
        if (_held.Length > 0)
        {
            string s = _held.ToString();
            _held.Clear();
            var target = InReasoning ? _reasoning : _content;
            // what is held is either a partial tag (at a section start) or whitespace + partial </think>
            target.Append(s, 0, InReasoning ? TrimEnd(s, 0, s.Length) : s.Length);
            _atStart = _openAllowed = false;
        }
        return Delta(r0, c0);
    }

    private ReasoningDelta Delta(int r0, int c0) =>
        _reasoning.Length == r0 && _content.Length == c0 ? ReasoningDelta.Empty
        : new(_reasoning.ToString(r0, _reasoning.Length - r0), _content.ToString(c0, _content.Length - c0));

    private static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';

    private static int TrimEnd(string s, int start, int end)
    {
        while (end > start && IsSpace(s[end - 1])) end--;
        return end;
    }

    /// <summary>1: <paramref name="tag"/> is at s[i]; -1: s ends with a proper prefix of it there; 0: neither.</summary>
    private static int MatchAt(string s, int i, string tag)
    {
        int n = Math.Min(tag.Length, s.Length - i);
        if (string.CompareOrdinal(s, i, tag, 0, n) != 0) return 0;
        return n == tag.Length ? 1 : -1;
    }

    /// <summary>The length of the longest suffix of s[start..] that is a proper prefix of <paramref name="tag"/>.</summary>
    private static int PartialSuffix(string s, int start, string tag)
    {
        for (int k = Math.Min(tag.Length - 1, s.Length - start); k > 0; k--)
            if (string.CompareOrdinal(s, s.Length - k, tag, 0, k) == 0) return k;
        return 0;
    }
}
