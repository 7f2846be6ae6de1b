// Structured outputs and forced tool calls on a job forwarded to another node: the HTTP API of node 0 takes the
// request and its router sends every job to node 1, which builds the grammar constraint over its own vocabulary
// from the answer format that travelled as data. On a random-weight model only the constraint makes the answers
// valid (JsonSchema.Net decides), so valid answers show it was applied where the job ran.
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Json.Schema;
using Orleans.Runtime;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Server;

namespace R1Sharp.Cluster.Tests;

public sealed class ForwardedAnswerFormatTests
{
    private const string Chat = "/v1/chat/completions";

    private const string Person = """
        {"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":130},
         "tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3}},"required":["name","age"],"additionalProperties":false}
        """;

    private const string Weather = """{"type":"object","properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","unit"],"additionalProperties":false}""";
    private const string Time = """{"type":"object","properties":{"zone":{"type":"string","pattern":"^[A-Z]{3}$"}},"required":["zone"],"additionalProperties":false}""";

    private const string Tools = $$$"""
        [{"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{{{Weather}}},"strict":false}},
         {"type":"function","function":{"name":"get_time","parameters":{{{Time}}}}}]
        """;

    private static bool Valid(string schema, string instance)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(instance); }
        catch (JsonException) { return false; }
        using var _ = doc;
        return JsonSchema.FromText(schema).Evaluate(doc.RootElement).IsValid;
    }

    private static string Body(int seed, string extra, bool stream = false) => $$$"""
        {"messages":[{"role":"user","content":"Describe someone."}],"max_tokens":600,"temperature":1,"seed":{{{seed}}},"reasoning_budget":6{{{(stream ? ",\"stream\":true" : "")}}}{{{extra}}}}
        """;

    private static async Task<(int Status, JsonElement Body)> PostJsonAsync(HttpClient http, string json)
    {
        using var r = await http.PostAsync(Chat, new StringContent(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json")));
        return ((int)r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task JsonSchemaAnswersAndForcedToolCallsRunOnAnotherNodeComeBackValid()
    {
        await using var nodes = await InProcessNodes.StartAsync(2, new RoutingOptions { BlockTokens = 16 });
        const int caller = 0, target = 1;
        // the caller's index believes its own slots all taken, so its router places new prompts on the other node
        for (int k = 0; k < 4; k++)
        {
            int[] other = nodes.Prompt([ChatMessage.User($"An earlier conversation, number {k}, that holds a slot.")]);
            nodes.Directory(caller).Index.Record(nodes.Address(caller), other, PrefixIndex<SiloAddress>.Chain(other, 16), 16, slots: 4);
        }

        using var model = LoadedModel.Load(InProcessNodes.ModelPath, threads: 1);
        await using var server = R1Server.Create(new ServerOptions { ModelPath = InProcessNodes.ModelPath, Port = 0, Parallel = 1, ContextSize = 2048 },
            model, hooks: new ServerHooks { Backend = (_, _) => nodes.Router(caller) });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(120) };
        int jobs = 0;

        string format = $$$""","response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{{{Person}}},"strict":true}}""";
        for (int seed = 0; seed < 4; seed++)
        {
            var (status, body) = await PostJsonAsync(http, Body(seed, format));
            Assert.True(200 == status, body.ToString());
            jobs++;
            var choice = body.GetProperty("choices")[0];
            string content = choice.GetProperty("message").GetProperty("content").GetString()!;
            Assert.True(Valid(Person, content), $"seed {seed}: {content}");
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            Assert.False(string.IsNullOrEmpty(choice.GetProperty("message").GetProperty("reasoning_content").GetString()));
        }

        for (int seed = 0; seed < 3; seed++)
        {
            var (status, body) = await PostJsonAsync(http, Body(seed, $$$""","tools":{{{Tools}}},"tool_choice":"required" """));
            Assert.True(200 == status, body.ToString());
            jobs++;
            var choice = body.GetProperty("choices")[0];
            Assert.True("tool_calls" == choice.GetProperty("finish_reason").GetString(), body.ToString());
            var calls = choice.GetProperty("message").GetProperty("tool_calls");
            Assert.True(calls.GetArrayLength() >= 1);
            foreach (var call in calls.EnumerateArray())
            {
                string name = call.GetProperty("function").GetProperty("name").GetString()!;
                string args = call.GetProperty("function").GetProperty("arguments").GetString()!;
                Assert.True(Valid(name == "get_weather" ? Weather : Time, args), $"seed {seed}: {name}({args})");
            }

            (status, body) = await PostJsonAsync(http, Body(seed,
                $$$""","tools":{{{Tools}}},"tool_choice":{"type":"function","function":{"name":"get_time"}},"parallel_tool_calls":false"""));
            Assert.True(200 == status, body.ToString());
            jobs++;
            calls = body.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls");
            Assert.Equal(1, calls.GetArrayLength());
            Assert.Equal("get_time", calls[0].GetProperty("function").GetProperty("name").GetString());
            Assert.True(Valid(Time, calls[0].GetProperty("function").GetProperty("arguments").GetString()!));
        }

        // every job ran on the other node, none here
        Assert.Equal(jobs, nodes.Engine(target).Status().ForwardedJobs);
        Assert.Equal(0, nodes.Engine(caller).Status().Jobs);
    }

    [Fact]
    public async Task AFormatTheNodeCannotCompileIsA400BeforeAnythingIsForwarded()
    {
        await using var nodes = await InProcessNodes.StartAsync(2, new RoutingOptions { BlockTokens = 16 });
        using var model = LoadedModel.Load(InProcessNodes.ModelPath, threads: 1);
        await using var server = R1Server.Create(new ServerOptions { ModelPath = InProcessNodes.ModelPath, Port = 0, Parallel = 1, ContextSize = 2048 },
            model, hooks: new ServerHooks { Backend = (_, _) => nodes.Router(0) });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var (status, body) = await PostJsonAsync(http, Body(0,
            ""","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","patternProperties":{"^a":{}}}}}"""));
        Assert.Equal(400, status);
        Assert.Contains("patternProperties", body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(0, nodes.Engine(0).Status().Jobs + nodes.Engine(1).Status().Jobs);
    }
}
