// Seed and Patch (extra request fields such as chat_template_kwargs) are marked experimental in the SDK
#pragma warning disable OPENAI001, SCME0001
// Real clients against the server: the official OpenAI .NET SDK, Microsoft.Extensions.AI over it, and the npm
// `openai` package from node (tests/npm/openai-client, installed once per machine by R1Sharp.TestSupport).
using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;
using AIChatRole = Microsoft.Extensions.AI.ChatRole;

namespace R1Sharp.Server.Tests;

public sealed class ClientTests
{
    private const string Key = "test-key";

    private static OpenAIClient Client(ServerHarness h) =>
        new(new ApiKeyCredential(Key), new OpenAIClientOptions { Endpoint = new Uri(h.BaseAddress, "v1/"), NetworkTimeout = TimeSpan.FromSeconds(60) });

    [Fact]
    public async Task OpenAISdkChatWholeAndStreamedAgree()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        var chat = Client(h).GetChatClient("tiny");
        List<OpenAI.Chat.ChatMessage> messages = [new SystemChatMessage("Be brief."), new UserChatMessage("Hello there")];
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10, Temperature = 0, Seed = 1 };
        // thinking off: everything the model says is content, which the SDK exposes
        options.Patch.Set("$.chat_template_kwargs.enable_thinking"u8, false);

        ChatCompletion whole = (await chat.CompleteChatAsync(messages, options)).Value;
        string text = string.Concat(whole.Content.Select(p => p.Text));
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(10, whole.Usage.OutputTokenCount);
        Assert.Equal("tiny", whole.Model);

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            if (update.FinishReason is { } f) finish = f;
            usage ??= update.Usage;
        }
        Assert.Equal(text, streamed.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.Equal(10, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task OpenAISdkSeesReasoningInTheRawResponse()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        var chat = Client(h).GetChatClient("tiny");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10, Temperature = 0 };
        options.Patch.Set("$.reasoning_budget"u8, 3);
        options.Patch.Set("$.ignore_eos"u8, true);
        var result = await chat.CompleteChatAsync([new UserChatMessage("Hello")], options);
        var raw = JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement;
        Assert.False(string.IsNullOrEmpty(raw.GetProperty("choices")[0].GetProperty("message").GetProperty("reasoning_content").GetString()));
        Assert.True(raw.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32() >= 3);
        Assert.Equal(10, result.Value.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task OpenAISdkWrongKeyAndUnknownModelThrow()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        var wrong = new OpenAIClient(new ApiKeyCredential("nope"), new OpenAIClientOptions { Endpoint = new Uri(h.BaseAddress, "v1/") });
        var e = await Assert.ThrowsAsync<ClientResultException>(() => wrong.GetChatClient("tiny").CompleteChatAsync([new UserChatMessage("Hi")]));
        Assert.Equal(401, e.Status);
        e = await Assert.ThrowsAsync<ClientResultException>(() => Client(h).GetChatClient("gpt-4o").CompleteChatAsync([new UserChatMessage("Hi")]));
        Assert.Equal(404, e.Status);
    }

    [Fact]
    public async Task MicrosoftExtensionsAIChatClient()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        IChatClient client = Client(h).GetChatClient("tiny").AsIChatClient();
        var options = new ChatOptions
        {
            MaxOutputTokens = 8,
            Temperature = 0,
            AdditionalProperties = new() { ["chat_template_kwargs"] = new Dictionary<string, object> { ["enable_thinking"] = false } },
        };
        List<AIChatMessage> messages = [new(AIChatRole.System, "Be brief."), new(AIChatRole.User, "Hello")];
        var response = await client.GetResponseAsync(messages, options);
        Assert.Equal(8, response.Usage!.OutputTokenCount);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, response.FinishReason);

        var streamed = new StringBuilder();
        await foreach (var update in client.GetStreamingResponseAsync(messages, options)) streamed.Append(update.Text);
        Assert.Equal(response.Text, streamed.ToString());
    }

    [Fact]
    public async Task NodeOpenAIPackage()
    {
        string nodeDir = NodeClient.EnsureInstalled();
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = Key });
        string output = await NodeClient.RunAsync(nodeDir, new Uri(h.BaseAddress, "v1").ToString(), Key);
        var r = JsonDocument.Parse(output).RootElement;
        var chat = r.GetProperty("chat");
        var stream = r.GetProperty("stream");
        Assert.Equal("length", chat.GetProperty("finish").GetString());
        Assert.False(string.IsNullOrEmpty(chat.GetProperty("reasoning").GetString()));
        Assert.Equal(chat.GetProperty("reasoning").GetString(), stream.GetProperty("reasoning").GetString());
        Assert.Equal(chat.GetProperty("content").GetString(), stream.GetProperty("content").GetString());
        Assert.Equal("length", stream.GetProperty("finish").GetString());
        Assert.Equal(10, stream.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", r.GetProperty("completion").GetProperty("finish").GetString());
        Assert.Equal(404, r.GetProperty("unknownModelStatus").GetInt32());
    }
}

/// <summary>The npm `openai` client script (tests/npm/openai-client), run by node against the server.</summary>
internal static class NodeClient
{
    public static string EnsureInstalled() => NpmPackages.Install("openai-client");

    public static Task<string> RunAsync(string dir, string baseUrl, string key, string script = "client.mjs") => Task.Run(() =>
        ProcessRunner.RunChecked("node", [script, baseUrl, key], dir, TimeSpan.FromSeconds(120), needs: "Node.js 20+")
            .Trim().Split('\n')[^1]);
}
