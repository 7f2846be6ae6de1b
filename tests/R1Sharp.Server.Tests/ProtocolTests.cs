// The wire format: chat (whole and streamed) with reasoning split out, completions, models, health, metrics.
using System.Text.Json;

namespace R1Sharp.Server.Tests;

public sealed class ProtocolTests
{
    private const string Chat = "/v1/chat/completions";

    [Fact]
    public async Task ChatSplitsReasoningFromContentWithUsage()
    {
        await using var h = await ServerHarness.StartAsync();
        // the budget forces </think> after 4 reasoning tokens, so both parts are present on a random model
        var (status, body) = await h.PostJsonAsync(Chat,
            """{"model":"tiny","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}],"max_tokens":12,"temperature":0,"reasoning_budget":4,"ignore_eos":true}""");
        Assert.Equal(200, status);
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        var choice = body.GetProperty("choices")[0];
        var message = choice.GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        string reasoning = message.GetProperty("reasoning_content").GetString()!;
        Assert.Equal(reasoning, message.GetProperty("reasoning").GetString());
        Assert.NotEmpty(reasoning);
        Assert.DoesNotContain("</think>", reasoning + message.GetProperty("content").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var usage = body.GetProperty("usage");
        Assert.Equal(12, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + 12, usage.GetProperty("total_tokens").GetInt32());
        int reasoningTokens = usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32();
        Assert.InRange(reasoningTokens, 4, 12 - 1);
    }

    [Fact]
    public async Task StreamCarriesReasoningFirstThenContentThenUsage()
    {
        await using var h = await ServerHarness.StartAsync();
        using var r = await h.PostAsync(Chat,
            """{"messages":[{"role":"user","content":"Hello"}],"max_tokens":12,"temperature":0,"reasoning_budget":4,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}""");
        Assert.Equal("text/event-stream", r.Content.Headers.ContentType!.MediaType);
        var events = await ServerHarness.ReadEventsAsync(r);
        Assert.Equal("assistant", events[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var kinds = new List<string>();
        string? finish = null;
        foreach (var e in events.Take(events.Count - 1))
        {
            Assert.Equal("chat.completion.chunk", e.GetProperty("object").GetString());
            var c = e.GetProperty("choices")[0];
            var d = c.GetProperty("delta");
            if (d.TryGetProperty("reasoning_content", out _)) kinds.Add("r");
            if (d.TryGetProperty("content", out _)) kinds.Add("c");
            if (c.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = c.GetProperty("finish_reason").GetString();
        }
        Assert.Equal("length", finish);
        Assert.Contains("r", kinds);
        Assert.Contains("c", kinds);
        Assert.True(kinds.LastIndexOf("r") < kinds.IndexOf("c"), "every reasoning delta comes before the first content delta");
        var last = events[^1];
        Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
        Assert.Equal(12, last.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task ThinkingOffPrefillsAnEmptyThinkBlock()
    {
        await using var h = await ServerHarness.StartAsync();
        var (_, on) = await h.PostJsonAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"temperature":0,"ignore_eos":true}""");
        var (status, off) = await h.PostJsonAsync(Chat,
            """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"temperature":0,"ignore_eos":true,"chat_template_kwargs":{"enable_thinking":false}}""");
        Assert.Equal(200, status);
        // with thinking the output starts as reasoning; without, it is all content and no reasoning is reported
        Assert.True(on.GetProperty("choices")[0].GetProperty("message").TryGetProperty("reasoning_content", out _));
        var msg = off.GetProperty("choices")[0].GetProperty("message");
        Assert.False(msg.TryGetProperty("reasoning_content", out _));
        Assert.Equal(0, off.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.True(off.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > on.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task EarlierReasoningIsDroppedFromThePrompt()
    {
        await using var h = await ServerHarness.StartAsync();
        const string withThink = """{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"<think>long musing here</think>Hello","reasoning_content":"long musing here"},{"role":"user","content":"Again"}],"max_tokens":1,"temperature":0}""";
        const string without = """{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"Again"}],"max_tokens":1,"temperature":0}""";
        var (_, a) = await h.PostJsonAsync(Chat, withThink);
        var (_, b) = await h.PostJsonAsync(Chat, without);
        Assert.Equal(b.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), a.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task StopStringsSeedsNAndPenaltiesAreHonoured()
    {
        await using var h = await ServerHarness.StartAsync();
        var (_, full) = await h.PostJsonAsync("/v1/completions", """{"prompt":"The cat","max_tokens":20,"temperature":0,"ignore_eos":true}""");
        string text = full.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.True(text.Length > 4);
        string stop = text.Substring(text.Length / 2, 2);
        int cut = text.IndexOf(stop, StringComparison.Ordinal);
        var (_, stopped) = await h.PostJsonAsync("/v1/completions",
            $$"""{"prompt":"The cat","max_tokens":20,"temperature":0,"ignore_eos":true,"stop":["zzzq",{{JsonSerializer.Serialize(stop)}}]}""");
        Assert.Equal(text[..cut], stopped.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("stop", stopped.GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        const string sampled = """{"prompt":"The cat","max_tokens":10,"temperature":1.0,"top_p":0.9,"seed":5,"n":3,"presence_penalty":0.5,"frequency_penalty":0.5,"ignore_eos":true}""";
        var (_, x) = await h.PostJsonAsync("/v1/completions", sampled);
        var (_, y) = await h.PostJsonAsync("/v1/completions", sampled);
        Assert.Equal(3, x.GetProperty("choices").GetArrayLength());
        for (int i = 0; i < 3; i++)
            Assert.Equal(x.GetProperty("choices")[i].GetProperty("text").GetString(), y.GetProperty("choices")[i].GetProperty("text").GetString());
        Assert.Equal(30, x.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task CompletionsStreamAndTokenPrompts()
    {
        await using var h = await ServerHarness.StartAsync();
        var (_, whole) = await h.PostJsonAsync("/v1/completions", """{"prompt":[1,2,3,4],"max_tokens":8,"temperature":0,"ignore_eos":true}""");
        Assert.Equal("text_completion", whole.GetProperty("object").GetString());
        using var r = await h.PostAsync("/v1/completions", """{"prompt":[1,2,3,4],"max_tokens":8,"temperature":0,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}""");
        var events = await ServerHarness.ReadEventsAsync(r);
        string streamed = string.Concat(events.Where(e => e.GetProperty("choices").GetArrayLength() > 0)
            .Select(e => e.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(whole.GetProperty("choices")[0].GetProperty("text").GetString(), streamed);
        Assert.Equal(8, events[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task ModelsHealthAndMetrics()
    {
        await using var h = await ServerHarness.StartAsync();
        var models = JsonDocument.Parse(await h.Http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("list", models.GetProperty("object").GetString());
        Assert.Equal("tiny", models.GetProperty("data")[0].GetProperty("id").GetString());
        var health = JsonDocument.Parse(await h.Http.GetStringAsync("/health")).RootElement;
        Assert.Equal("ok", health.GetProperty("status").GetString());
        await h.PostJsonAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"temperature":0,"ignore_eos":true}""");
        string metrics = await h.MetricsAsync();
        foreach (var name in new[] { "r1sharp_prompt_tokens_total", "r1sharp_generation_tokens_total 3", "r1sharp_queue_depth 0", "r1sharp_active_sequences 0",
                     "r1sharp_time_to_first_token_seconds_count 1", "r1sharp_inter_token_latency_seconds_count 2" })
            Assert.Contains(name, metrics);
        // the tiny model moves into memory in the background: 0 or 1 before, 1 once the move is done
        Assert.Matches(@"r1sharp_weights_in_memory [01]\b", metrics);
        await h.Model.InMemory;
        Assert.Contains("r1sharp_weights_in_memory 1", await h.MetricsAsync());
    }
}
