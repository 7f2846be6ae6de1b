// PLACEHOLDER (server branch): splits streamed model output into reasoning (inside <think> … </think>) and the
// answer. The chat-format branch replaces this file with the full implementation of the same API.
using System.Text;

namespace R1Sharp.Chat;

public readonly record struct ReasoningDelta(string Reasoning, string Content)
{
    public bool IsEmpty => Reasoning.Length == 0 && Content.Length == 0;
}

public sealed class ReasoningParser
{
    private const string Open = "<think>", Close = "</think>";
    private readonly StringBuilder _reasoning = new(), _content = new();
    private string _held = "";

    /// <param name="startsInReasoning">the prompt already opened &lt;think&gt; (R1's generation prompt does)</param>
    public ReasoningParser(bool startsInReasoning) => InReasoning = startsInReasoning;

    public bool InReasoning { get; private set; }
    public string Reasoning => _reasoning.ToString();
    public string Content => _content.ToString();

    public ReasoningDelta Push(string text)
    {
        string s = _held + text;
        _held = "";
        var r = new StringBuilder();
        var c = new StringBuilder();
        while (s.Length > 0)
        {
            string tag = InReasoning ? Close : Open;
            int i = s.IndexOf(tag, StringComparison.Ordinal);
            if (i >= 0)
            {
                (InReasoning ? r : c).Append(s, 0, i);
                s = s[(i + tag.Length)..];
                InReasoning = !InReasoning;
                continue;
            }
            // hold back a suffix that may be the start of the tag
            int keep = 0;
            for (int k = Math.Min(tag.Length - 1, s.Length); k > 0; k--)
                if (tag.StartsWith(s[^k..], StringComparison.Ordinal)) { keep = k; break; }
            (InReasoning ? r : c).Append(s, 0, s.Length - keep);
            _held = s[(s.Length - keep)..];
            break;
        }
        return Emit(r.ToString(), c.ToString());
    }

    public ReasoningDelta Flush()
    {
        string s = _held;
        _held = "";
        return InReasoning ? Emit(s, "") : Emit("", s);
    }

    private ReasoningDelta Emit(string reasoning, string content)
    {
        _reasoning.Append(reasoning);
        _content.Append(content);
        return new ReasoningDelta(reasoning, content);
    }
}
