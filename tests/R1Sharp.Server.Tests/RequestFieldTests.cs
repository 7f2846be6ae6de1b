// No request field is silently dropped: one that is not implemented is a 400 naming it as soon as its value asks for
// something, one OpenAI does not know is refused as OpenAI refuses it, and bookkeeping fields are accepted. The
// table behind this (RequestFields) is the one README.md and docs/server.md show, and covers every bound field.
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Server.Protocol;

namespace R1Sharp.Server.Tests;

public sealed class RequestFieldTests
{
    private const string Chat = "/v1/chat/completions", Completions = "/v1/completions";

    private static string With(string path, string field, string valueJson)
    {
        var body = path == Chat
            ? JsonNode.Parse("""{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}""")!.AsObject()
            : JsonNode.Parse("""{"prompt":"Hi","max_tokens":2}""")!.AsObject();
        body[field] = JsonNode.Parse(valueJson);
        return body.ToJsonString();
    }

    // a value that asks for the feature, and one that asks for nothing, for each field that is not implemented
    public static TheoryData<string, string, string, string?> NotImplemented => new()
    {
        { Chat, "functions", """[{"name":"f"}]""", "[]" },
        { Chat, "function_call", "\"auto\"", "\"none\"" },
        { Chat, "logit_bias", """{"17":100}""", "{}" },
        { Chat, "reasoning_effort", "\"low\"", null },
        { Chat, "verbosity", "\"low\"", null },
        { Chat, "modalities", """["text","audio"]""", """["text"]""" },
        { Chat, "audio", """{"voice":"alloy","format":"wav"}""", null },
        { Chat, "prediction", """{"type":"content","content":"x"}""", null },
        { Chat, "web_search_options", "{}", null },
        { Completions, "logit_bias", """{"17":-100}""", "{}" },
        { Completions, "echo", "true", "false" },
        { Completions, "best_of", "3", "1" },
        { Completions, "suffix", "\"tail\"", "\"\"" },
    };

    [Theory]
    [MemberData(nameof(NotImplemented))]
    public async Task NotImplementedFieldsAre400NamingThemUnlessTheyAskForNothing(string path, string field, string asks, string? inert)
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync(path, With(path, field, asks));
        Assert.Equal(400, status);
        var e = body.GetProperty("error");
        Assert.Equal("invalid_request_error", e.GetProperty("type").GetString());
        Assert.Equal(field, e.GetProperty("param").GetString());
        Assert.Contains($"'{field}'", e.GetProperty("message").GetString());

        if (inert is not null) Assert.Equal(200, (await h.PostJsonAsync(path, With(path, field, inert))).Status);
        Assert.Equal(200, (await h.PostJsonAsync(path, With(path, field, "null"))).Status);
    }

    [Fact]
    public async Task UnknownFieldsAndFieldsOfTheOtherEndpointAreRefusedAsOpenAIRefusesThem()
    {
        await using var h = await ServerHarness.StartAsync();
        foreach (var (path, field) in new[] { (Chat, "temprature"), (Chat, "prompt"), (Completions, "messages"), (Completions, "reasoning_budget"), (Chat, "guided_json") })
        {
            var (status, body) = await h.PostJsonAsync(path, With(path, field, "1"));
            Assert.Equal(400, status);
            Assert.Equal($"Unrecognized request argument supplied: {field}", body.GetProperty("error").GetProperty("message").GetString());
            Assert.Equal(field, body.GetProperty("error").GetProperty("param").GetString());
        }
    }

    [Fact]
    public async Task FieldsThatChangeNothingAreAccepted()
    {
        await using var h = await ServerHarness.StartAsync();
        var fields = new (string Path, string Field, string Value)[]
        {
            (Chat, "user", "\"u-1\""), (Chat, "metadata", """{"k":"v"}"""), (Chat, "store", "true"), (Chat, "service_tier", "\"auto\""),
            (Chat, "safety_identifier", "\"s\""), (Chat, "prompt_cache_key", "\"k\""),
            (Completions, "user", "\"u-1\""),
        };
        foreach (var (path, field, value) in fields)
            Assert.Equal(200, (await h.PostJsonAsync(path, With(path, field, value))).Status);
    }

    [Fact]
    public void EveryBoundFieldIsInTheTableAsSupportedAndEverySupportedFieldIsBound()
    {
        var bound = new Dictionary<ApiEndpoints, HashSet<string>>
        {
            [ApiEndpoints.Chat] = [.. ProtocolJson.Wire.ChatCompletionRequest.Properties.Select(p => p.Name)],
            [ApiEndpoints.Completions] = [.. ProtocolJson.Wire.CompletionRequest.Properties.Select(p => p.Name)],
        };
        foreach (var (endpoint, names) in bound)
        {
            var supported = RequestFields.All.Where(f => f.Status == FieldStatus.Supported && f.Endpoints.HasFlag(endpoint)).Select(f => f.Name).ToHashSet();
            Assert.Equal(supported.Order(), names.Order());
        }
    }

    [Fact]
    public void ReadmeAndServerDocShowTheTable()
    {
        string readme = File.ReadAllText(RepoPaths.Get("README.md"));
        string doc = File.ReadAllText(RepoPaths.Get("docs/server.md"));
        string supported = RequestFields.MarkdownTable(FieldStatus.Supported), all = RequestFields.MarkdownTable();
        Assert.True(readme.Contains(supported), $"README.md's request field table differs from RequestFields (dotnet run scripts/request-fields.cs [all] prints it); it should read:\n{supported}");
        Assert.True(doc.Contains(all), $"docs/server.md's request field table differs from RequestFields (dotnet run scripts/request-fields.cs [all] prints it); it should read:\n{all}");
    }
}
