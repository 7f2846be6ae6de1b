// SKEXP0010: Semantic Kernel's OpenAI connector with a custom endpoint; OPENAI001: the SDK's Patch and Seed
#pragma warning disable OPENAI001, SCME0001, SKEXP0001, SKEXP0010
// Function calling, structured outputs and logprobs through real clients on a random-weight model: the OpenAI .NET
// SDK (forced tool calls whole and streamed with the result sent back, a strict JSON Schema response format,
// logprobs), Microsoft.Extensions.AI's UseFunctionInvocation() over HTTP and in process (R1ChatClient) completing a
// tool round trip, GetResponseAsync<T>() in process, Semantic Kernel's automatic function calling over its OpenAI
// connector, and the npm `openai` client streaming a tool call. The grammar makes every call and JSON answer valid
// whatever the weights, so these hold on the tiny synthesized model; the reasoning before it is cut short by a
// reasoning budget (sent as llama.cpp's reasoning_budget field, which a deployment would set).
using System.ClientModel;
using System.ComponentModel;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.Connectors.OpenAI;
using OpenAI;
using OpenAI.Chat;
using R1Sharp.Chat;
using R1Sharp.Engine;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AIChatRole = Microsoft.Extensions.AI.ChatRole;
using FunctionCallContent = Microsoft.Extensions.AI.FunctionCallContent;
using FunctionResultContent = Microsoft.Extensions.AI.FunctionResultContent;

namespace R1Sharp.Server.Tests;

public sealed class ToolClientTests
{
    private const string Key = "test-key";

    private const string Forecast = """
        {"type":"object","properties":{"days":{"type":"integer","minimum":1,"maximum":7},"unit":{"enum":["celsius","fahrenheit"]}},
         "required":["days","unit"],"additionalProperties":false}
        """;

    private const string Person = """
        {"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":130}},
         "required":["name","age"],"additionalProperties":false}
        """;

    private static OpenAIClient Client(ServerHarness h) =>
        new(new ApiKeyCredential(Key), new OpenAIClientOptions { Endpoint = new Uri(h.BaseAddress, "v1/"), NetworkTimeout = TimeSpan.FromSeconds(60) });

    private static bool Valid(string schema, string instance)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(instance); }
        catch (JsonException) { return false; }
        using var _ = doc;
        return JsonSchema.FromText(schema).Evaluate(doc.RootElement).IsValid;
    }

    private static ChatCompletionOptions SdkOptions(int seed, int budget = 6)
    {
        var o = new ChatCompletionOptions { MaxOutputTokenCount = 600, Temperature = 1, Seed = seed };
        o.Patch.Set("$.reasoning_budget"u8, budget);
        return o;
    }

    [Fact]
    public async Task OpenAISdkForcedToolCallsWholeAndStreamedThenTheResultSentBack()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        var chat = Client(h).GetChatClient("tiny");
        var tool = ChatTool.CreateFunctionTool("get_forecast", "The forecast for a number of days", BinaryData.FromString(Forecast));
        for (int seed = 0; seed < 3; seed++)
        {
            List<OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("What will the weather be?")];
            var options = SdkOptions(seed);
            options.Tools.Add(tool);
            options.ToolChoice = ChatToolChoice.CreateRequiredChoice();
            // one call: with parallel calls a random model may go on calling past any token limit
            options.AllowParallelToolCalls = false;
            ChatCompletion whole = (await chat.CompleteChatAsync(messages, options)).Value;
            Assert.True(OpenAI.Chat.ChatFinishReason.ToolCalls == whole.FinishReason,
                $"seed {seed}: {whole.FinishReason}, {whole.Usage.OutputTokenCount} tokens, calls {string.Join(" ", whole.ToolCalls.Select(c => c.FunctionArguments))}, content '{(whole.Content.Count > 0 ? whole.Content[0].Text : "")}'");
            Assert.Single(whole.ToolCalls);
            foreach (var call in whole.ToolCalls)
            {
                Assert.Equal("get_forecast", call.FunctionName);
                Assert.True(Valid(Forecast, call.FunctionArguments.ToString()), call.FunctionArguments.ToString());
            }

            // streamed: the SDK assembles the calls from their delta chunks, the same calls as whole
            var ids = new Dictionary<int, string>();
            var names = new Dictionary<int, string>();
            var args = new Dictionary<int, StringBuilder>();
            OpenAI.Chat.ChatFinishReason? finish = null;
            await foreach (var u in chat.CompleteChatStreamingAsync(messages, options))
            {
                finish = u.FinishReason ?? finish;
                foreach (var d in u.ToolCallUpdates)
                {
                    if (d.ToolCallId is { } id) ids[d.Index] = id;
                    if (d.FunctionName is { } name) names[d.Index] = name;
                    if (!args.TryGetValue(d.Index, out var sb)) args[d.Index] = sb = new StringBuilder();
                    if (d.FunctionArgumentsUpdate is { } a) sb.Append(a.ToString());
                }
            }
            Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, finish);
            Assert.Equal(whole.ToolCalls.Select(c => c.FunctionArguments.ToString()), args.OrderBy(p => p.Key).Select(p => p.Value.ToString()));
            Assert.Equal(whole.ToolCalls.Count, ids.Count);
            Assert.All(names.Values, n => Assert.Equal("get_forecast", n));

            // the result goes back in the model's format and the conversation goes on
            messages.Add(new AssistantChatMessage(whole));
            foreach (var call in whole.ToolCalls) messages.Add(new ToolChatMessage(call.Id, """{"forecast":"sunny"}"""));
            var next = SdkOptions(seed, budget: 3);
            next.Tools.Add(tool);
            next.MaxOutputTokenCount = 12;
            ChatCompletion reply = (await chat.CompleteChatAsync(messages, next)).Value;
            Assert.True(reply.Usage.InputTokenCount > whole.Usage.InputTokenCount);
        }
    }

    [Fact]
    public async Task OpenAISdkJsonSchemaFormatAndLogprobs()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        var chat = Client(h).GetChatClient("tiny");
        List<OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("Describe someone.")];
        for (int seed = 0; seed < 4; seed++)
        {
            var options = SdkOptions(seed);
            options.ResponseFormat = OpenAI.Chat.ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(Person), jsonSchemaIsStrict: true);
            options.IncludeLogProbabilities = true;
            options.TopLogProbabilityCount = 3;
            ChatCompletion whole = (await chat.CompleteChatAsync(messages, options)).Value;
            string text = whole.Content[0].Text;
            Assert.True(Valid(Person, text), $"seed {seed}: {text}");
            // the answer's tokens, as the SDK reads them
            var lp = whole.ContentTokenLogProbabilities;
            Assert.NotEmpty(lp);
            Assert.Equal(text, Encoding.UTF8.GetString(lp.SelectMany(t => t.Utf8Bytes!.Value.ToArray()).ToArray()).TrimStart());
            foreach (var t in lp)
            {
                Assert.True(t.LogProbability <= 0);
                if (t.LogProbability == 0 && t.TopLogProbabilities.Count == 0) continue; // forced after the reasoning budget
                Assert.Equal(t.Token, Encoding.UTF8.GetString(t.Utf8Bytes!.Value.Span));
                Assert.InRange(t.TopLogProbabilities.Count, 1, 3);
                Assert.True(t.TopLogProbabilities[0].LogProbability >= t.LogProbability);
            }

            var streamed = new List<ChatTokenLogProbabilityDetails>();
            await foreach (var u in chat.CompleteChatStreamingAsync(messages, options)) streamed.AddRange(u.ContentTokenLogProbabilities);
            Assert.Equal(lp.Select(t => (t.Token, t.LogProbability)), streamed.Select(t => (t.Token, t.LogProbability)));
        }
    }

    public enum Unit { Celsius, Fahrenheit }

    /// <summary>The tool every client calls: counts its calls and checks what the model passed.</summary>
    private sealed class ForecastTool
    {
        public int Calls;

        [Description("The forecast for a number of days")]
        public string GetForecast(long days, Unit unit)
        {
            Interlocked.Increment(ref Calls);
            return $"{days} days of sun ({unit})";
        }
    }

    private static async Task HoldsARoundTrip(IChatClient client, ChatOptions options, ForecastTool tool)
    {
        var response = await client.GetResponseAsync([new AIChatMessage(AIChatRole.User, "What will the weather be?")], options);
        Assert.True(tool.Calls >= 1, "the function was never invoked");
        var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
        var results = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().ToList();
        Assert.NotEmpty(calls);
        Assert.All(calls, c => Assert.Equal("get_forecast", c.Name));
        Assert.Equal(calls.Select(c => c.CallId), results.Select(r => r.CallId));
        Assert.All(results, r => Assert.Null(r.Exception));
        Assert.Contains("days of sun", results[0].Result?.ToString());
        // the model answered after the results
        Assert.Equal(AIChatRole.Assistant, response.Messages[^1].Role);
        Assert.DoesNotContain(response.Messages[^1].Contents, c => c is FunctionCallContent);
    }

    private static ChatOptions FunctionOptions(ForecastTool tool) => new()
    {
        // additionalProperties: false, else a random model may write a key that never ends
        Tools = [AIFunctionFactory.Create(tool.GetForecast, new AIFunctionFactoryOptions
        {
            Name = "get_forecast",
            JsonSchemaCreateOptions = new AIJsonSchemaCreateOptions { TransformOptions = new AIJsonSchemaTransformOptions { DisallowAdditionalProperties = true } },
        })],
        ToolMode = ChatToolMode.RequireAny,
        Temperature = 1,
        Seed = 2,
        MaxOutputTokens = 600,
    };

    [Fact]
    public async Task ExtensionsAIFunctionInvocationOverHttp()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        var tool = new ForecastTool();
        IChatClient client = Client(h).GetChatClient("tiny").AsIChatClient().AsBuilder()
            .UseFunctionInvocation(configure: f => f.MaximumIterationsPerRequest = 3).Build();
        var options = FunctionOptions(tool);
        options.RawRepresentationFactory = _ =>
        {
            var o = new ChatCompletionOptions();
            o.Patch.Set("$.reasoning_budget"u8, 6);
            return o;
        };
        await HoldsARoundTrip(client, options, tool);
    }

    [Fact]
    public async Task ExtensionsAIFunctionInvocationAndStructuredOutputInProcess()
    {
        using var model = LoadedModel.Load(ServerHarness.ModelPath, threads: 1);
        using var r1 = new R1ChatClient(model, new R1ChatClientOptions { Slots = 1, ContextSize = 2048, ModelId = "tiny" });
        var tool = new ForecastTool();
        IChatClient client = r1.AsBuilder().UseFunctionInvocation(configure: f => f.MaximumIterationsPerRequest = 3).Build();
        var options = FunctionOptions(tool);
        options.AdditionalProperties = new() { [R1ChatClient.ReasoningBudgetKey] = 6 };
        await HoldsARoundTrip(client, options, tool);

        // GetResponseAsync<T>: the schema M.E.AI derives from the type becomes the answer's grammar
        for (int seed = 0; seed < 3; seed++)
        {
            var typed = await r1.GetResponseAsync<Reading>([new AIChatMessage(AIChatRole.User, "Take a reading.")], new ChatOptions
            {
                Temperature = 1, Seed = seed, MaxOutputTokens = 600,
                AdditionalProperties = new() { [R1ChatClient.ReasoningBudgetKey] = 6 },
            });
            Assert.True(typed.TryGetResult(out var reading), $"seed {seed}: {typed.Text}");
            Assert.NotNull(reading);
        }

        // a specific function is forced, and a schema the compiler cannot take is refused by name
        var specific = FunctionOptions(tool);
        specific.ToolMode = ChatToolMode.RequireSpecific("get_forecast");
        specific.AdditionalProperties = new() { [R1ChatClient.ReasoningBudgetKey] = 6 };
        var forced = await r1.GetResponseAsync([new AIChatMessage(AIChatRole.User, "Weather?")], specific);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.ToolCalls, forced.FinishReason);
        var bad = new ChatOptions { ResponseFormat = Microsoft.Extensions.AI.ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("""{"type":"object","patternProperties":{"^a":{}}}""").RootElement) };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => r1.GetResponseAsync([new AIChatMessage(AIChatRole.User, "x")], bad));
        Assert.Contains("patternProperties", e.Message);
    }

    public sealed record Reading(bool Ok, int Count, Unit Unit);

    /// <summary>Adds llama.cpp's reasoning_budget field to chat requests, for clients that cannot send extra fields.</summary>
    private sealed class ReasoningBudgetHandler(int budget) : DelegatingHandler(new HttpClientHandler())
    {
        public readonly List<string> Exchanges = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            var response = await SendWithBudget(request, ct);
            string text = await response.Content.ReadAsStringAsync(ct);
            lock (Exchanges) Exchanges.Add(text);
            var copy = new HttpResponseMessage(response.StatusCode) { Content = new StringContent(text, Encoding.UTF8, "application/json"), RequestMessage = request };
            return copy;
        }

        private async Task<HttpResponseMessage> SendWithBudget(HttpRequestMessage request, CancellationToken ct)
        {
            if (request.Content is { } content && request.RequestUri!.AbsolutePath.EndsWith("/chat/completions", StringComparison.Ordinal))
            {
                var body = JsonNode.Parse(await content.ReadAsStringAsync(ct))!.AsObject();
                body["reasoning_budget"] = budget;
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
                lock (Exchanges) Exchanges.Add(body.ToJsonString());
            }
            return await base.SendAsync(request, ct);
        }
    }

    [Fact]
    public async Task SemanticKernelAutomaticFunctionCalling()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        var tool = new ForecastTool();
        var handler = new ReasoningBudgetHandler(6);
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        var builder = Kernel.CreateBuilder();
        builder.AddOpenAIChatCompletion(modelId: "tiny", endpoint: new Uri(h.BaseAddress, "v1/"), apiKey: Key, httpClient: http);
        var kernel = builder.Build();
        kernel.Plugins.AddFromFunctions("weather", [KernelFunctionFactory.CreateFromMethod(tool.GetForecast, "get_forecast")]);
        var settings = new OpenAIPromptExecutionSettings
        {
            // strict schemas (additionalProperties: false), else a random model may write a key that never ends
            FunctionChoiceBehavior = FunctionChoiceBehavior.Required(options: new FunctionChoiceBehaviorOptions { AllowStrictSchemaAdherence = true }),
            Temperature = 1,
            Seed = 3,
            MaxTokens = 600,
        };
        var result = await kernel.InvokePromptAsync("What will the weather be?", new KernelArguments(settings));
        Assert.True(tool.Calls >= 1, "Semantic Kernel never invoked the function: " + string.Join("\n", handler.Exchanges));
        Assert.NotNull(result.GetValue<string>());
    }

    [Fact]
    public async Task NodeOpenAIPackageStreamsAToolCall()
    {
        string nodeDir = NodeClient.EnsureInstalled();
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        string output = await NodeClient.RunAsync(nodeDir, new Uri(h.BaseAddress, "v1").ToString(), Key, "tools.mjs");
        var r = JsonDocument.Parse(output).RootElement;
        Assert.Equal("tool_calls", r.GetProperty("finish").GetString());
        var calls = r.GetProperty("calls").EnumerateArray().ToList();
        Assert.NotEmpty(calls);
        Assert.True(r.GetProperty("chunks").GetInt32() > calls.Count, "arguments come in fragments after the first chunk");
        foreach (var c in calls)
        {
            Assert.StartsWith("call_", c.GetProperty("id").GetString());
            Assert.Equal("function", c.GetProperty("type").GetString());
            Assert.Equal("get_forecast", c.GetProperty("name").GetString());
            Assert.True(Valid(Forecast, c.GetProperty("arguments").GetString()!), c.GetProperty("arguments").GetString());
        }
        Assert.Equal("length", r.GetProperty("followUp").GetProperty("finish").GetString());
    }
}
