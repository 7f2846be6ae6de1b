// The chat formats R1Sharp renders, and which one a model file asks for. GGUF files carry their Jinja template in
// tokenizer.chat_template; we do not run Jinja but recognize the three template families by their control tokens
// and render each in C#, byte for byte as the Jinja text does (tests hold them to @huggingface/jinja renderings).
namespace R1Sharp.Chat;

public enum ChatTemplateKind
{
    /// <summary>DeepSeek-R1 (and R1-Distill-Qwen/Llama): &lt;｜User｜&gt;/&lt;｜Assistant｜&gt;, prompt opens &lt;think&gt;.</summary>
    R1,
    /// <summary>Qwen2.5's ChatML: &lt;|im_start|&gt;role ... &lt;|im_end|&gt;.</summary>
    ChatML,
    /// <summary>Llama 3.x: &lt;|start_header_id|&gt;role&lt;|end_header_id|&gt; ... &lt;|eot_id|&gt;.</summary>
    Llama3,
}

public static class ChatTemplates
{
    /// <summary>
    /// The format of a model: from its tokenizer.chat_template text when that names a known family's control tokens,
    /// else from the vocabulary (<paramref name="hasToken"/>: is this token text in it), else R1. R1 is tried first
    /// because R1-Distill vocabularies keep their base model's ChatML or Llama 3 tokens too.
    /// </summary>
    public static ChatTemplateKind Detect(string? jinjaTemplate, Func<string, bool> hasToken)
    {
        if (!string.IsNullOrEmpty(jinjaTemplate))
        {
            if (jinjaTemplate.Contains(R1ChatTemplate.Assistant, StringComparison.Ordinal)
                || jinjaTemplate.Contains(R1ChatTemplate.User, StringComparison.Ordinal)) return ChatTemplateKind.R1;
            if (jinjaTemplate.Contains(ChatMLTemplate.ImStart, StringComparison.Ordinal)) return ChatTemplateKind.ChatML;
            if (jinjaTemplate.Contains(Llama3ChatTemplate.StartHeader, StringComparison.Ordinal)) return ChatTemplateKind.Llama3;
        }
        if (hasToken(R1ChatTemplate.Assistant)) return ChatTemplateKind.R1;
        if (hasToken(ChatMLTemplate.ImStart)) return ChatTemplateKind.ChatML;
        if (hasToken(Llama3ChatTemplate.StartHeader)) return ChatTemplateKind.Llama3;
        return ChatTemplateKind.R1;
    }

    /// <summary>Names accepted by --template: "r1", "chatml", "llama3" (any case; also "deepseek", "qwen", "llama-3").</summary>
    public static bool TryParse(string name, out ChatTemplateKind kind)
    {
        switch (name.Trim().ToLowerInvariant())
        {
            case "r1": case "deepseek": case "deepseek-r1": kind = ChatTemplateKind.R1; return true;
            case "chatml": case "qwen": case "qwen2": kind = ChatTemplateKind.ChatML; return true;
            case "llama3": case "llama-3": kind = ChatTemplateKind.Llama3; return true;
            default: kind = default; return false;
        }
    }

    /// <summary>The --template name of a format.</summary>
    public static string Name(ChatTemplateKind kind) => kind switch
    {
        ChatTemplateKind.R1 => "r1",
        ChatTemplateKind.ChatML => "chatml",
        ChatTemplateKind.Llama3 => "llama3",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>
    /// Renders a conversation as prompt text (control tokens as text; encode it with special tokens parsed).
    /// <paramref name="bosToken"/> is the bos token's text; ChatML has none and ignores it. <paramref name="thinking"/>
    /// false only changes R1, whose generation prompt then carries an empty think block; the other formats have no
    /// think block to open. <paramref name="tools"/> are listed where each format lists them (R1: in the system
    /// prompt, as DeepSeek's R1-0528 template and llama.cpp add them; ChatML: Qwen2.5's tools block; Llama 3.1: in
    /// the first user turn).
    /// </summary>
    public static string Render(ChatTemplateKind kind, IReadOnlyList<ChatMessage> messages, string bosToken,
                                bool addGenerationPrompt, bool thinking = true, IReadOnlyList<ToolDefinition>? tools = null) => kind switch
    {
        ChatTemplateKind.R1 => R1ChatTemplate.Render(messages, bosToken, addGenerationPrompt, thinking, tools),
        ChatTemplateKind.ChatML => ChatMLTemplate.Render(messages, addGenerationPrompt, tools),
        ChatTemplateKind.Llama3 => Llama3ChatTemplate.Render(messages, bosToken, addGenerationPrompt, tools),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>
    /// True when the generation prompt leaves the model inside an open think block (R1 with thinking on), so its
    /// output starts as reasoning: pass this as <see cref="ReasoningParser"/>'s startsInReasoning.
    /// </summary>
    public static bool PromptOpensThink(ChatTemplateKind kind, bool thinking) => kind == ChatTemplateKind.R1 && thinking;
}
