// Structured outputs and forced tool calls on a random-weight model: whatever the weights, a grammar makes every
// answer valid (JsonSchema.Net decides), streamed or not, while the reasoning before it stays free. Independent of
// model quality, so these hold on a tiny synthesized model.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace R1Sharp.Server.Tests;

public sealed class StructuredOutputTests
{
    private const string Chat = "/v1/chat/completions";

    internal const string Person = """
        {"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":130},
         "tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3},"email":{"type":"string","format":"email"}},
         "required":["name","age"],"additionalProperties":false}
        """;

    private const string Weather = """{"type":"object","properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","unit"],"additionalProperties":false}""";
    private const string Time = """{"type":"object","properties":{"zone":{"type":"string","pattern":"^[A-Z]{3}$"}},"required":["zone"],"additionalProperties":false}""";

    private static string Tools(bool strict = false) => $$$"""
        [{"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{{{Weather}}},"strict":{{{(strict ? "true" : "false")}}}}},
         {"type":"function","function":{"name":"get_time","parameters":{{{Time}}}}}]
        """;

    internal static bool Valid(string schema, string instance)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(instance); }
        catch (JsonException) { return false; }
        using var _ = doc;
        return JsonSchema.FromText(schema).Evaluate(doc.RootElement, new EvaluationOptions { RequireFormatValidation = true }).IsValid;
    }

    internal static string Body(int seed, string extra, bool stream = false) => $$$"""
        {"messages":[{"role":"user","content":"Describe someone."}],"max_tokens":600,"temperature":1,"seed":{{{seed}}},"reasoning_budget":6{{{(stream ? ",\"stream\":true" : "")}}}{{{extra}}}}
        """;

    [Fact]
    public async Task JsonSchemaAnswersAreValidForEverySeedWhileTheReasoningStaysFree()
    {
        await using var h = await ServerHarness.StartAsync();
        string format = $$$""","response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{{{Person}}},"strict":true}}""";
        for (int seed = 0; seed < 12; seed++)
        {
            var (status, body) = await h.PostJsonAsync(Chat, Body(seed, format));
            Assert.Equal(200, status);
            var choice = body.GetProperty("choices")[0];
            string content = choice.GetProperty("message").GetProperty("content").GetString()!;
            Assert.True(Valid(Person, content), $"seed {seed}: {content}");
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            Assert.False(string.IsNullOrEmpty(choice.GetProperty("message").GetProperty("reasoning_content").GetString()));
        }
    }

    [Fact]
    public async Task StreamedJsonObjectsAreValidAndSeveralChoicesEachFollowTheGrammar()
    {
        await using var h = await ServerHarness.StartAsync();
        for (int seed = 0; seed < 4; seed++)
        {
            using var r = await h.PostAsync(Chat, Body(seed, ""","n":3,"response_format":{"type":"json_object"}""", stream: true));
            var events = await ServerHarness.ReadEventsAsync(r);
            var content = new StringBuilder[3] { new(), new(), new() };
            foreach (var e in events)
                foreach (var c in e.GetProperty("choices").EnumerateArray())
                    if (c.GetProperty("delta").TryGetProperty("content", out var t) && t.ValueKind == JsonValueKind.String)
                        content[c.GetProperty("index").GetInt32()].Append(t.GetString());
            foreach (var text in content)
                Assert.True(Valid("""{"type":"object"}""", text.ToString()), $"seed {seed}: {text}");
        }
    }

    [Fact]
    public async Task GbnfGrammarsConstrainChatAndCompletions()
    {
        await using var h = await ServerHarness.StartAsync();
        const string gbnf = """root ::= "answer: " ("yes" | "no") ("!" | "")""";
        var (status, body) = await h.PostJsonAsync(Chat, Body(1, $",\"grammar\":{JsonSerializer.Serialize(gbnf)}"));
        Assert.Equal(200, status);
        Assert.Matches("^answer: (yes|no)!?$", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        (status, body) = await h.PostJsonAsync("/v1/completions",
            $$$"""{"prompt":"Q: ok?","max_tokens":20,"temperature":1,"seed":2,"grammar":{{{JsonSerializer.Serialize(gbnf)}}}}""");
        Assert.Equal(200, status);
        Assert.Matches("^answer: (yes|no)!?$", body.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task RequiredToolChoiceForcesValidCallsAndNamedChoiceForcesThatFunction()
    {
        await using var h = await ServerHarness.StartAsync();
        for (int seed = 0; seed < 6; seed++)
        {
            var (status, body) = await h.PostJsonAsync(Chat, Body(seed, $$$""","tools":{{{Tools()}}},"tool_choice":"required" """));
            Assert.Equal(200, status);
            var choice = body.GetProperty("choices")[0];
            Assert.True("tool_calls" == choice.GetProperty("finish_reason").GetString(), body.ToString());
            var calls = choice.GetProperty("message").GetProperty("tool_calls");
            Assert.True(calls.GetArrayLength() >= 1);
            foreach (var call in calls.EnumerateArray())
            {
                Assert.StartsWith("call_", call.GetProperty("id").GetString());
                Assert.Equal("function", call.GetProperty("type").GetString());
                string name = call.GetProperty("function").GetProperty("name").GetString()!;
                string args = call.GetProperty("function").GetProperty("arguments").GetString()!;
                Assert.True(Valid(name == "get_weather" ? Weather : Time, args), $"seed {seed}: {name}({args})");
            }

            (status, body) = await h.PostJsonAsync(Chat, Body(seed,
                $$$""","tools":{{{Tools()}}},"tool_choice":{"type":"function","function":{"name":"get_time"}},"parallel_tool_calls":false"""));
            Assert.Equal(200, status);
            calls = body.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls");
            Assert.Equal(1, calls.GetArrayLength());
            Assert.Equal("get_time", calls[0].GetProperty("function").GetProperty("name").GetString());
            Assert.True(Valid(Time, calls[0].GetProperty("function").GetProperty("arguments").GetString()!));
        }
    }

    [Fact]
    public async Task StreamedToolCallsComeAsIdTypeAndNameThenArgumentFragments()
    {
        await using var h = await ServerHarness.StartAsync();
        using var r = await h.PostAsync(Chat, Body(3, $$$""","tools":{{{Tools()}}},"tool_choice":"required" """, stream: true));
        var events = await ServerHarness.ReadEventsAsync(r);
        var args = new Dictionary<int, StringBuilder>();
        var names = new Dictionary<int, string>();
        string? finish = null;
        foreach (var e in events)
        {
            var c = e.GetProperty("choices")[0];
            if (c.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = c.GetProperty("finish_reason").GetString();
            if (!c.GetProperty("delta").TryGetProperty("tool_calls", out var tc)) continue;
            foreach (var d in tc.EnumerateArray())
            {
                int index = d.GetProperty("index").GetInt32();
                var f = d.GetProperty("function");
                if (d.TryGetProperty("id", out var id))
                {
                    Assert.False(names.ContainsKey(index), "id and name come once, first");
                    Assert.Equal("function", d.GetProperty("type").GetString());
                    Assert.StartsWith("call_", id.GetString());
                    names[index] = f.GetProperty("name").GetString()!;
                    args[index] = new StringBuilder();
                }
                else Assert.True(names.ContainsKey(index), "fragments follow the call's first chunk");
                if (f.TryGetProperty("arguments", out var a)) args[index].Append(a.GetString());
            }
        }
        Assert.Equal("tool_calls", finish);
        Assert.NotEmpty(names);
        foreach (var (index, name) in names) Assert.True(Valid(name == "get_weather" ? Weather : Time, args[index].ToString()), $"{name}({args[index]})");
    }

    [Theory]
    [InlineData(""","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","patternProperties":{"^a":{}}}}}""", "response_format", "patternProperties")]
    [InlineData(""","response_format":{"type":"xml"}""", "response_format", null)]
    [InlineData(""","response_format":{"type":"json_schema","json_schema":{"name":"x"}}""", "response_format", null)]
    [InlineData(""","grammar":"root ::= undefined-rule" """, "grammar", null)]
    [InlineData(""","grammar":"root ::= \"a\"","response_format":{"type":"json_object"}""", "grammar", null)]
    public async Task UncompilableFormatsAre400NamingTheCause(string extra, string param, string? keyword)
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync(Chat, Body(0, extra));
        Assert.Equal(400, status);
        var e = body.GetProperty("error");
        Assert.Equal(param, e.GetProperty("param").GetString());
        if (keyword is not null) Assert.Contains(keyword, e.GetProperty("message").GetString());
    }
}
