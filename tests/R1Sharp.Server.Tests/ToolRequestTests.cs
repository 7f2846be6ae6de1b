// Tool requests on the wire: tools are listed in the prompt (it grows by the listing), tool_choice "none" leaves
// them out, bad tool definitions and choices are 400s naming the field, and assistant tool calls and tool results
// in the history are taken.
using System.Text.Json;

namespace R1Sharp.Server.Tests;

public sealed class ToolRequestTests
{
    private const string Chat = "/v1/chat/completions";
    private const string Weather = """{"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}""";

    private static string Body(string extra) =>
        $$"""{"messages":[{"role":"user","content":"Weather in Paris?"}],"max_tokens":4,"temperature":0{{extra}}}""";

    [Fact]
    public async Task ToolsAreListedInThePromptUnlessTheChoiceIsNone()
    {
        await using var h = await ServerHarness.StartAsync();
        async Task<int> PromptTokens(string extra)
        {
            var (status, body) = await h.PostJsonAsync(Chat, Body(extra));
            Assert.Equal(200, status);
            Assert.NotEqual("tool_calls", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
            return body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        }
        int plain = await PromptTokens("");
        int listed = await PromptTokens($$""","tools":[{{Weather}}]""");
        int auto = await PromptTokens($$""","tools":[{{Weather}}],"tool_choice":"auto","parallel_tool_calls":false""");
        int none = await PromptTokens($$""","tools":[{{Weather}}],"tool_choice":"none" """);
        Assert.True(listed > plain + 20, $"{listed} vs {plain}");
        Assert.Equal(listed, auto);
        Assert.Equal(plain, none);
    }

    [Theory]
    [InlineData(""","tools":[{"type":"retrieval"}]""", "tools[0]")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"bad name!"}}]""", "tools[0]")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"f","parameters":"nope"}}]""", "tools[0]")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]""", "tools")]
    [InlineData(""","tool_choice":"auto" """, "tool_choice")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes" """, "tool_choice")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}""", "tool_choice")]
    public async Task BadToolsAndChoicesAre400(string extra, string param)
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync(Chat, Body(extra));
        Assert.Equal(400, status);
        Assert.Equal(param, body.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task AHistoryWithCallsAndResultsIsTaken()
    {
        await using var h = await ServerHarness.StartAsync();
        string body = $$$"""
            {"messages":[{"role":"user","content":"Weather in Paris?"},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"{\"temperature\": 21}"}],
             "tools":[{{{Weather}}}],"max_tokens":4,"temperature":0}
            """;
        var (status, response) = await h.PostJsonAsync(Chat, body);
        Assert.Equal(200, status);
        Assert.Equal(JsonValueKind.Object, response.GetProperty("choices")[0].GetProperty("message").ValueKind);
    }
}
