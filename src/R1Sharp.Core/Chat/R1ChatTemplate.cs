// The DeepSeek-R1 chat format, rendered exactly as the R1-Distill tokenizer_config.json Jinja template does:
// bos + system text, <｜User｜> turns, earlier assistant turns cut to the text after their last </think>,
// tool calls and outputs in DeepSeek's tokens, and the generation prompt <｜Assistant｜><think>\n.
// With thinking off the generation prompt closes the think block at once, <｜Assistant｜><think>\n\n</think>\n\n:
// the empty block R1 itself writes for a trivial question, so the model goes straight to the answer (Qwen3's
// enable_thinking=false writes the same block). The R1 Jinja template has no such switch.
// The official R1 template never lists tools; given tools, the system prompt ends with a section that lists them
// (each function as indented JSON, the layout of DeepSeek's own tool prompts) and shows the call syntax the model
// answers with, as DeepSeek's R1-0528 template and llama.cpp add them.
using System.Text;

namespace R1Sharp.Chat;

public static class R1ChatTemplate
{
    public const string User = "<｜User｜>";
    public const string Assistant = "<｜Assistant｜>";
    public const string EndOfSentence = "<｜end▁of▁sentence｜>";
    public const string ThinkOpen = "<think>";
    public const string ThinkClose = "</think>";

    /// <summary>The generation prompt with thinking off: an empty think block, then the answer.</summary>
    public const string NoThinkGenerationPrompt = Assistant + ThinkOpen + "\n\n" + ThinkClose + "\n\n";

    public static string Render(IReadOnlyList<ChatMessage> messages, string bosToken, bool addGenerationPrompt, bool thinking = true,
                                IReadOnlyList<ToolDefinition>? tools = null)
    {
        var sb = new StringBuilder(bosToken);
        // the last system message wins, and goes first without a role tag
        string systemPrompt = "";
        foreach (var m in messages) if (m.Role == "system") systemPrompt = m.Content ?? "";
        sb.Append(systemPrompt);
        if (tools is { Count: > 0 }) AppendTools(sb, systemPrompt.Length > 0, tools);

        bool isFirstToolCall = true, isTool = false, isOutputFirst = true;
        foreach (var m in messages)
        {
            switch (m.Role)
            {
                case "user":
                    isTool = false;
                    sb.Append(User).Append(m.Content);
                    break;
                case "assistant":
                    if (m.ToolCalls is { Count: > 0 } calls)
                    {
                        isTool = false;
                        foreach (var call in calls)
                        {
                            sb.Append(isFirstToolCall ? "<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" : "\n<｜tool▁call▁begin｜>")
                              .Append(call.Type).Append("<｜tool▁sep｜>").Append(call.Name)
                              .Append("\n```json\n").Append(call.Arguments).Append("\n```<｜tool▁call▁end｜>");
                            isFirstToolCall = false;
                        }
                        sb.Append("<｜tool▁calls▁end｜>").Append(EndOfSentence);
                    }
                    if (m.Content is { } content)
                    {
                        if (isTool)
                        {
                            sb.Append("<｜tool▁outputs▁end｜>").Append(content).Append(EndOfSentence);
                            isTool = false;
                        }
                        else
                        {
                            sb.Append(Assistant).Append(StripReasoning(content)).Append(EndOfSentence);
                        }
                    }
                    break;
                case "tool":
                    isTool = true;
                    sb.Append(isOutputFirst ? "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" : "\n<｜tool▁output▁begin｜>")
                      .Append(m.Content).Append("<｜tool▁output▁end｜>");
                    isOutputFirst = false;
                    break;
            }
        }
        if (isTool) sb.Append("<｜tool▁outputs▁end｜>");
        if (addGenerationPrompt && !isTool) sb.Append(thinking ? Assistant + ThinkOpen + "\n" : NoThinkGenerationPrompt);
        return sb.ToString();
    }

    public const string CallsBegin = "<｜tool▁calls▁begin｜>", CallBegin = "<｜tool▁call▁begin｜>", ToolSep = "<｜tool▁sep｜>",
        CallEnd = "<｜tool▁call▁end｜>", CallsEnd = "<｜tool▁calls▁end｜>";

    private static void AppendTools(StringBuilder sb, bool afterSystem, IReadOnlyList<ToolDefinition> tools)
    {
        if (afterSystem) sb.Append("\n\n");
        sb.Append("## Tools\n\n### Function\n\nYou have the following functions available:\n\n");
        foreach (var t in tools) sb.Append("- `").Append(t.Name).Append("`:\n```json\n").Append(PyJson.Dumps(t.Function, indent: 4)).Append("\n```\n\n");
        sb.Append("To call functions, answer with this block (one line per call, the arguments as valid JSON), and nothing after it:\n")
          .Append(CallsBegin).Append(CallBegin).Append("function").Append(ToolSep).Append("FUNCTION_NAME\n```json\n{\"argument\": \"value\"}\n```")
          .Append(CallEnd).Append('\n').Append(CallBegin).Append("function").Append(ToolSep).Append("OTHER_FUNCTION_NAME\n```json\n{}\n```")
          .Append(CallEnd).Append(CallsEnd).Append('\n');
    }

    /// <summary>The answer part of an assistant turn: everything after the last &lt;/think&gt;.</summary>
    public static string StripReasoning(string content)
    {
        int i = content.LastIndexOf(ThinkClose, StringComparison.Ordinal);
        return i < 0 ? content : content[(i + ThinkClose.Length)..];
    }
}
