// A chat turn as the OpenAI API and the Jinja chat templates see it.
namespace R1Sharp.Chat;

public sealed record ToolCall(string Type, string Name, string Arguments);

public sealed record ChatMessage(string Role, string? Content, IReadOnlyList<ToolCall>? ToolCalls = null)
{
    public static ChatMessage System(string text) => new("system", text);
    public static ChatMessage User(string text) => new("user", text);
    public static ChatMessage Assistant(string text) => new("assistant", text);
    public static ChatMessage Tool(string text) => new("tool", text);
}
