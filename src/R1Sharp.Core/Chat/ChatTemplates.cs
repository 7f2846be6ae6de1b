// PLACEHOLDER (server branch): the minimal chat-template layer the server codes against. The chat-format branch
// replaces this file with the full implementation of the same API.
using System.Text;

namespace R1Sharp.Chat;

public enum ChatTemplateKind { R1, ChatML, Llama3 }

public static class ChatTemplates
{
    /// <summary>Which format a model uses, from its Jinja template text or, without one, from its special tokens.</summary>
    public static ChatTemplateKind Detect(string? jinjaTemplate, Func<string, bool> hasToken)
    {
        if (jinjaTemplate is { } t)
        {
            if (t.Contains("<｜Assistant｜>", StringComparison.Ordinal)) return ChatTemplateKind.R1;
            if (t.Contains("<|im_start|>", StringComparison.Ordinal)) return ChatTemplateKind.ChatML;
            if (t.Contains("<|start_header_id|>", StringComparison.Ordinal)) return ChatTemplateKind.Llama3;
        }
        if (hasToken("<｜Assistant｜>")) return ChatTemplateKind.R1;
        if (hasToken("<|im_start|>")) return ChatTemplateKind.ChatML;
        if (hasToken("<|start_header_id|>")) return ChatTemplateKind.Llama3;
        return ChatTemplateKind.R1;
    }

    public static bool TryParse(string name, out ChatTemplateKind kind)
    {
        switch (name.ToLowerInvariant())
        {
            case "r1": case "deepseek-r1": case "deepseek3": kind = ChatTemplateKind.R1; return true;
            case "chatml": kind = ChatTemplateKind.ChatML; return true;
            case "llama3": kind = ChatTemplateKind.Llama3; return true;
            default: kind = ChatTemplateKind.R1; return false;
        }
    }

    public static string Render(ChatTemplateKind kind, IReadOnlyList<ChatMessage> messages, string bosToken, bool addGenerationPrompt, bool thinking = true)
    {
        switch (kind)
        {
            case ChatTemplateKind.R1:
            {
                string s = R1ChatTemplate.Render(messages, bosToken, addGenerationPrompt);
                // thinking off: an empty reasoning block is prefilled, as DeepSeek's templates do
                if (addGenerationPrompt && !thinking && s.EndsWith("<think>\n", StringComparison.Ordinal)) s += "\n</think>\n\n";
                return s;
            }
            case ChatTemplateKind.ChatML:
            {
                var sb = new StringBuilder();
                foreach (var m in messages)
                    sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Role == "assistant" ? R1ChatTemplate.StripReasoning(m.Content ?? "") : m.Content).Append("<|im_end|>\n");
                if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n").Append(thinking ? "" : "<think>\n\n</think>\n\n");
                return sb.ToString();
            }
            default:
            {
                var sb = new StringBuilder(bosToken);
                foreach (var m in messages)
                    sb.Append("<|start_header_id|>").Append(m.Role == "tool" ? "ipython" : m.Role).Append("<|end_header_id|>\n\n")
                      .Append(m.Role == "assistant" ? R1ChatTemplate.StripReasoning(m.Content ?? "") : m.Content).Append("<|eot_id|>");
                if (addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                return sb.ToString();
            }
        }
    }

    /// <summary>True when the rendered generation prompt ends inside an open &lt;think&gt; block (the output starts as reasoning).</summary>
    public static bool PromptOpensThink(ChatTemplateKind kind, bool thinking) => kind == ChatTemplateKind.R1 && thinking;
}
