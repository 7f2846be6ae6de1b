// A function the model may call, as the OpenAI API declares it ({"type":"function","function":{name, description,
// parameters, strict}}), kept with its JSON so that templates can write it back as the model's own format does.
using System.Text.Json;

namespace R1Sharp.Chat;

/// <param name="Name">The function's name, as the model writes it in a call.</param>
/// <param name="Description">What the function does, for the model; null when not given.</param>
/// <param name="Parameters">The JSON Schema of the arguments object (an empty object schema when not given).</param>
/// <param name="Strict">The caller asks for arguments that always follow <paramref name="Parameters"/>.</param>
/// <param name="Function">The "function" object as given (name, description, parameters ...), for rendering.</param>
public sealed record ToolDefinition(string Name, string? Description, JsonElement Parameters, bool Strict, JsonElement Function)
{
    /// <summary>
    /// Reads one OpenAI tool object. Throws <see cref="ArgumentException"/> with a one-line cause when it is not a
    /// function with a name of letters, digits, '_' and '-' (at most 64, as OpenAI requires) and an object schema.
    /// </summary>
    public static ToolDefinition FromOpenAi(JsonElement tool)
    {
        if (tool.ValueKind != JsonValueKind.Object) throw new ArgumentException("a tool must be an object");
        if (!tool.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "function")
            throw new ArgumentException("a tool's type must be \"function\"");
        if (!tool.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object)
            throw new ArgumentException("a tool needs a \"function\" object");
        return FromFunction(f.Clone());
    }

    /// <summary>Reads a bare function object (name, description, parameters, strict).</summary>
    public static ToolDefinition FromFunction(JsonElement f)
    {
        if (!f.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String || !IsValidName(n.GetString()!))
            throw new ArgumentException("a function's name must be 1 to 64 letters, digits, '_' or '-'");
        string? description = f.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        JsonElement parameters = EmptyObjectSchema;
        if (f.TryGetProperty("parameters", out var p) && p.ValueKind != JsonValueKind.Null)
        {
            if (p.ValueKind != JsonValueKind.Object) throw new ArgumentException($"the parameters of '{n.GetString()}' must be a JSON Schema object");
            parameters = p.Clone();
        }
        bool strict = f.TryGetProperty("strict", out var s) && s.ValueKind == JsonValueKind.True;
        return new ToolDefinition(n.GetString()!, description, parameters, strict, f.Clone());
    }

    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    private static readonly JsonElement EmptyObjectSchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();
}
