// What a request asks the answer to look like, and the grammar constraint that enforces it: a JSON object, JSON
// following a schema, or a GBNF grammar (response_format and llama.cpp's `grammar`), or tool calls (tool_choice
// "required" or a named function; strict tools in "auto" once the model opens a block of calls). The server and
// R1ChatClient both go through here, so the two behave alike.
using System.Text;
using R1Sharp.Grammar;

namespace R1Sharp.Chat;

public enum AnswerFormatKind { JsonObject, JsonSchema, Gbnf }

/// <param name="Kind">What <paramref name="Text"/> is.</param>
/// <param name="Text">The JSON Schema (JsonSchema) or GBNF text (Gbnf); unused for JsonObject.</param>
/// <param name="Strict">OpenAI's strict: additionalProperties defaults to false.</param>
public sealed record AnswerFormat(AnswerFormatKind Kind, string Text = "", bool Strict = false)
{
    public static readonly AnswerFormat JsonObject = new(AnswerFormatKind.JsonObject);

    /// <summary>
    /// A factory of one constraint per choice (each holds its own matcher), or null when nothing constrains the
    /// answer. Throws <see cref="GrammarException"/> (<see cref="UnsupportedSchemaException"/> naming the keyword) for a
    /// schema or grammar that cannot be compiled, and <see cref="ArgumentException"/> for requests that contradict
    /// each other.
    /// </summary>
    public static Func<GrammarConstraint>? Plan(GrammarCache cache, ChatTemplateKind template, bool startsInReasoning,
        IReadOnlyList<ToolDefinition> tools, ToolChoice choice, bool parallelCalls, AnswerFormat? format)
    {
        var syntax = ToolCallParser.SyntaxOf(template);
        if (choice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function)
        {
            if (format is not null) throw new ArgumentException("a response format cannot be asked for together with a forced tool call");
            var g = cache.GetOrCompile(ToolsKey("forced", syntax, parallelCalls, choice.FunctionName, tools),
                () => ToolCallGrammar.Build(tools, syntax, parallelCalls, choice.FunctionName));
            return () => GrammarConstraint.ForAnswer(g, startsInReasoning);
        }
        if (format is not null)
        {
            var g = format.Kind switch
            {
                AnswerFormatKind.JsonObject => cache.GetOrCompile("json-object", () => JsonSchemaCompiler.Compile("""{"type":"object"}""")),
                AnswerFormatKind.JsonSchema => cache.GetOrCompile($"schema:{format.Strict}:{format.Text}",
                    () => JsonSchemaCompiler.Compile(format.Text, new JsonSchemaOptions { Strict = format.Strict })),
                _ => cache.GetOrCompile("gbnf:" + format.Text, () => GbnfParser.Parse(format.Text)),
            };
            return () => GrammarConstraint.ForAnswer(g, startsInReasoning);
        }
        // auto: the answer is free; a block of calls, once opened, follows the strict tools' schemas
        if (choice.Mode == ToolChoiceMode.Auto && tools.Any(t => t.Strict) && ToolCallGrammar.Opener(syntax) is { } opener)
        {
            var lazy = tools.Select(t => t.Strict ? t : t with { Parameters = AnyObject }).ToList();
            var g = cache.GetOrCompile(ToolsKey("lazy", syntax, parallelCalls, null, lazy),
                () => ToolCallGrammar.Build(lazy, syntax, parallelCalls, afterOpener: true));
            return () => GrammarConstraint.AfterTrigger(g, startsInReasoning, opener);
        }
        return null;
    }

    private static readonly System.Text.Json.JsonElement AnyObject =
        System.Text.Json.JsonDocument.Parse("""{"type":"object"}""").RootElement.Clone();

    private static string ToolsKey(string mode, ToolCallSyntax syntax, bool parallel, string? only, IReadOnlyList<ToolDefinition> tools)
    {
        var sb = new StringBuilder($"tools:{mode}:{syntax}:{parallel}:{only}");
        foreach (var t in tools) sb.Append('\n').Append(t.Name).Append(':').Append(t.Strict).Append(':').Append(t.Parameters.GetRawText());
        return sb.ToString();
    }
}
