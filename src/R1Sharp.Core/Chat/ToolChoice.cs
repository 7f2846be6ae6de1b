// How the model may use the tools of a request, as OpenAI's tool_choice says: not at all, as it sees fit, at least
// one call, or a call to one named function.
namespace R1Sharp.Chat;

public enum ToolChoiceMode { None, Auto, Required, Function }

public sealed record ToolChoice(ToolChoiceMode Mode, string? FunctionName = null)
{
    public static readonly ToolChoice None = new(ToolChoiceMode.None), Auto = new(ToolChoiceMode.Auto), Required = new(ToolChoiceMode.Required);

    /// <summary>The tools the prompt lists and the answer is parsed for: none when the choice is None.</summary>
    public bool ToolsOn => Mode != ToolChoiceMode.None;
}
