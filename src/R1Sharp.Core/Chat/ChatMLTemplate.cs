// The ChatML format as Qwen2.5's tokenizer_config.json Jinja template renders it (the no-tools branch):
// <|im_start|>role\ntext<|im_end|>\n per turn, Qwen's default system prompt when none is given, tool calls as
// <tool_call> JSON and tool outputs as <tool_response> blocks in a user turn, generation prompt <|im_start|>assistant\n.
// With tools, the system turn lists them as the template's `tools` branch does (each tool object as `tojson`
// writes it) and tells the model to answer with <tool_call> blocks. Earlier assistant turns are kept whole, as the
// template keeps them.
using System.Text;

namespace R1Sharp.Chat;

public static class ChatMLTemplate
{
    public const string ImStart = "<|im_start|>";
    public const string ImEnd = "<|im_end|>";
    public const string DefaultSystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

    /// <summary>
    /// Renders <paramref name="messages"/>. A tool call's <see cref="ToolCall.Arguments"/> is written verbatim: it
    /// stands for the template's `arguments | tojson`, so pass JSON text (Python's json.dumps spacing matches Qwen's
    /// own rendering byte for byte).
    /// </summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyList<ToolDefinition>? tools = null)
    {
        var sb = new StringBuilder();
        bool firstIsSystem = messages.Count > 0 && messages[0].Role == "system";
        sb.Append(ImStart).Append("system\n")
          .Append(firstIsSystem ? messages[0].Content : DefaultSystemPrompt);
        if (tools is { Count: > 0 })
        {
            sb.Append("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n")
              .Append("You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
            foreach (var t in tools) sb.Append("\n{\"type\": \"function\", \"function\": ").Append(PyJson.Dumps(t.Function)).Append('}');
            sb.Append("\n</tools>\n\nFor each function call, return a json object with function name and arguments within ")
              .Append("<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
        }
        sb.Append(ImEnd).Append('\n');

        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            bool hasCalls = m.ToolCalls is { Count: > 0 };
            if (m.Role == "user" || (m.Role == "system" && i > 0) || (m.Role == "assistant" && !hasCalls))
            {
                sb.Append(ImStart).Append(m.Role).Append('\n').Append(m.Content).Append(ImEnd).Append('\n');
            }
            else if (m.Role == "assistant")
            {
                sb.Append(ImStart).Append(m.Role);
                if (!string.IsNullOrEmpty(m.Content)) sb.Append('\n').Append(m.Content);
                foreach (var call in m.ToolCalls!)
                    sb.Append("\n<tool_call>\n{\"name\": \"").Append(call.Name).Append("\", \"arguments\": ")
                      .Append(call.Arguments).Append("}\n</tool_call>");
                sb.Append(ImEnd).Append('\n');
            }
            else if (m.Role == "tool")
            {
                // consecutive tool outputs share one user turn
                if (i == 0 || messages[i - 1].Role != "tool") sb.Append(ImStart).Append("user");
                sb.Append("\n<tool_response>\n").Append(m.Content).Append("\n</tool_response>");
                if (i == messages.Count - 1 || messages[i + 1].Role != "tool") sb.Append(ImEnd).Append('\n');
            }
        }
        if (addGenerationPrompt) sb.Append(ImStart).Append("assistant\n");
        return sb.ToString();
    }
}
