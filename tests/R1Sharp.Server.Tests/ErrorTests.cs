// Every refusal is an OpenAI-style error object with the right HTTP status.
using System.Text.Json;

namespace R1Sharp.Server.Tests;

public sealed class ErrorTests
{
    private const string Chat = "/v1/chat/completions";
    private const string Hi = """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}""";

    private static void AssertError(JsonElement body, string type, string? param = null, string? code = null)
    {
        var e = body.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString()));
        Assert.Equal(type, e.GetProperty("type").GetString());
        if (param != null) Assert.Equal(param, e.GetProperty("param").GetString());
        if (code != null) Assert.Equal(code, e.GetProperty("code").GetString());
        Assert.True(e.TryGetProperty("param", out _) && e.TryGetProperty("code", out _), "param and code are always present");
    }

    [Theory]
    [InlineData("{not json", null)]
    [InlineData("", null)]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"temperature":"hot"}""", null)]
    [InlineData("""{"messages":[]}""", "messages")]
    [InlineData("""{"messages":[{"role":"wizard","content":"Hi"}]}""", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"temperature":3}""", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"top_p":0}""", "top_p")]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"n":0}""", "n")]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"max_tokens":0}""", "max_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"presence_penalty":9}""", "presence_penalty")]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"stop":5}""", null)]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", null)]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"chat_template_kwargs":{"enable_thinking":"no"}}""", "chat_template_kwargs")]
    [InlineData("""{"messages":[{"role":"user","content":"Hi"}],"reasoning_budget":-5}""", "reasoning_budget")]
    public async Task BadRequestsAre400(string json, string? param)
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync(Chat, json);
        Assert.Equal(400, status);
        AssertError(body, "invalid_request_error", param);
    }

    [Fact]
    public async Task PromptPlusMaxTokensPastTheContextIs400()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ContextSize = 64 });
        var (status, body) = await h.PostJsonAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":100}""");
        Assert.Equal(400, status);
        AssertError(body, "invalid_request_error", "messages", "context_length_exceeded");
        string longPrompt = JsonSerializer.Serialize(string.Join(' ', Enumerable.Repeat("the quick brown fox", 40)));
        (status, body) = await h.PostJsonAsync("/v1/completions", $$"""{"prompt":{{longPrompt}}}""");
        Assert.Equal(400, status);
        AssertError(body, "invalid_request_error", "prompt", "context_length_exceeded");
        (status, _) = await h.PostJsonAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":20}""");
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task UnknownModelIs404()
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync(Chat, """{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}""");
        Assert.Equal(404, status);
        AssertError(body, "invalid_request_error", "model", "model_not_found");
        (status, body) = await h.PostJsonAsync("/v1/completions", """{"model":"nope","prompt":"Hi"}""");
        Assert.Equal(404, status);
        AssertError(body, "invalid_request_error", "model", "model_not_found");
    }

    [Fact]
    public async Task MissingOrWrongApiKeyIs401()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = "sekret" });
        var (status, body) = await h.PostJsonAsync(Chat, Hi);
        Assert.Equal(401, status);
        AssertError(body, "invalid_request_error", code: "invalid_api_key");
        (status, body) = await h.PostJsonAsync(Chat, Hi, apiKey: "wrong");
        Assert.Equal(401, status);
        AssertError(body, "invalid_request_error", code: "invalid_api_key");
        (status, _) = await h.PostJsonAsync(Chat, Hi, apiKey: "sekret");
        Assert.Equal(200, status);
        using var models = await h.Http.GetAsync("/v1/models");
        Assert.Equal(401, (int)models.StatusCode);
        using var health = await h.Http.GetAsync("/health");
        Assert.Equal(200, (int)health.StatusCode);
    }

    [Fact]
    public async Task FullQueueIs429()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 1, MaxQueue = 1 });
        h.Scheduler.Pause(); // nothing is admitted: the slot's request and the queued one both wait
        var a = h.PostJsonAsync(Chat, Hi);
        var b = h.PostJsonAsync(Chat, Hi);
        await ServerHarness.WaitUntil(() => h.Scheduler.Queued == 2, "two requests are queued");
        var (status, body) = await h.PostJsonAsync(Chat, Hi);
        Assert.Equal(429, status);
        AssertError(body, "rate_limit_error", code: "queue_full");
        h.Scheduler.Resume();
        Assert.Equal(200, (await a).Status);
        Assert.Equal(200, (await b).Status);
    }

    [Fact]
    public async Task OversizedBodyIs413()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { MaxBodyBytes = 64 * 1024 });
        string big = JsonSerializer.Serialize(new string('a', 100 * 1024));
        var (status, body) = await h.PostJsonAsync(Chat, $$"""{"messages":[{"role":"user","content":{{big}}}]}""");
        Assert.Equal(413, status);
        AssertError(body, "invalid_request_error", code: "request_too_large");
    }
}
