// JsonSchema.Net (the .NET field's validator) as the oracle for the schema grammars, with formats asserted.
using System.Text.Json;
using Json.Schema;

namespace R1Sharp.Tests.Grammar;

internal static class SchemaOracle
{
    public static JsonSchema Load(string schemaJson) =>
        JsonSchema.FromText(schemaJson, new BuildOptions { SchemaRegistry = new SchemaRegistry() });

    public static bool IsValid(JsonSchema schema, string instance)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(instance); }
        catch (JsonException) { return false; } // not JSON at all
        using var _ = doc;
        return schema.Evaluate(doc.RootElement, new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.Flag }).IsValid;
    }

    public static bool IsValid(string schemaJson, string instance) => IsValid(Load(schemaJson), instance);
}
