// The fields OpenAI lets be one of several shapes: stop (string or array), message content (string or an array
// of text parts), completions prompt (string, strings, token ids, or arrays of token ids).
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace R1Sharp.Server.Protocol;

public sealed class StopConverter : JsonConverter<List<string>>
{
    public override List<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null: return null;
            case JsonTokenType.String: return [reader.GetString()!];
            case JsonTokenType.StartArray:
                var list = new List<string>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String) throw new JsonException("'stop' must be a string or an array of strings");
                    list.Add(reader.GetString()!);
                }
                return list;
            default: throw new JsonException("'stop' must be a string or an array of strings");
        }
    }

    public override void Write(Utf8JsonWriter writer, List<string> value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var s in value) writer.WriteStringValue(s);
        writer.WriteEndArray();
    }
}

/// <summary>Message content: a string, or an array of parts of which only text parts are supported (joined).</summary>
public sealed class ContentConverter : JsonConverter<string>
{
    public override bool HandleNull => true;

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null: return null;
            case JsonTokenType.String: return reader.GetString();
            case JsonTokenType.StartArray:
                var sb = new StringBuilder();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("content parts must be objects");
                    string? type = null, text = null;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        string name = reader.GetString()!;
                        reader.Read();
                        if (name == "type" && reader.TokenType == JsonTokenType.String) type = reader.GetString();
                        else if (name == "text" && reader.TokenType == JsonTokenType.String) text = reader.GetString();
                        else reader.Skip();
                    }
                    if (type != "text") throw new JsonException($"content parts of type '{type}' are not supported (only 'text')");
                    sb.Append(text);
                }
                return sb.ToString();
            default: throw new JsonException("'content' must be a string or an array of content parts");
        }
    }

    public override void Write(Utf8JsonWriter writer, string? value, JsonSerializerOptions options)
    {
        if (value is null) writer.WriteNullValue(); else writer.WriteStringValue(value);
    }
}

public sealed class PromptConverter : JsonConverter<PromptInput>
{
    private const string Shape = "'prompt' must be a string, an array of strings, an array of token ids, or an array of such arrays";

    public override PromptInput? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType == JsonTokenType.String) return new PromptInput([reader.GetString()!], null);
        if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException(Shape);
        List<string>? texts = null;
        List<int[]>? tokenLists = null;
        List<int>? flat = null;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.String when tokenLists == null && flat == null:
                    (texts ??= []).Add(reader.GetString()!);
                    break;
                case JsonTokenType.Number when texts == null && tokenLists == null:
                    (flat ??= []).Add(reader.GetInt32());
                    break;
                case JsonTokenType.StartArray when texts == null && flat == null:
                    var ids = new List<int>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.Number) throw new JsonException(Shape);
                        ids.Add(reader.GetInt32());
                    }
                    (tokenLists ??= []).Add([.. ids]);
                    break;
                default: throw new JsonException(Shape);
            }
        }
        if (flat != null) return new PromptInput(null, [[.. flat]]);
        if (texts != null) return new PromptInput(texts, null);
        if (tokenLists != null) return new PromptInput(null, tokenLists);
        throw new JsonException("'prompt' is empty");
    }

    public override void Write(Utf8JsonWriter writer, PromptInput value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var t in value.Texts ?? []) writer.WriteStringValue(t);
        foreach (var ids in value.TokenLists ?? [])
        {
            writer.WriteStartArray();
            foreach (int id in ids) writer.WriteNumberValue(id);
            writer.WriteEndArray();
        }
        writer.WriteEndArray();
    }
}
