// Continuous batching: batched requests produce exactly what they produce alone; a client that goes away frees
// its slot; a repeated prompt reuses the cached prefix.
using System.Text.Json;

namespace R1Sharp.Server.Tests;

public sealed class BatchingTests
{
    private const string Chat = "/v1/chat/completions";

    private static string Request(int i) =>
        $$"""{"messages":[{"role":"user","content":"Question {{i}}: {{new string('x', i)}} why is the sky blue?"}],"max_tokens":24,"temperature":0}""";

    [Fact]
    public async Task EightConcurrentEqualEightOneByOne()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 8 });
        var alone = new List<(string, int, string)>();
        for (int i = 0; i < 8; i++)
        {
            var (status, body) = await h.PostJsonAsync(Chat, Request(i));
            Assert.Equal(200, status);
            alone.Add(ServerHarness.ChatSummary(body));
        }
        // hold the loop until all eight are queued, so they are admitted together and decode in one batch
        h.Scheduler.Pause();
        var tasks = Enumerable.Range(0, 8).Select(i => h.PostJsonAsync(Chat, Request(i))).ToArray();
        await ServerHarness.WaitUntil(() => h.Scheduler.Queued == 8, "eight requests are queued");
        h.Scheduler.Resume();
        var together = (await Task.WhenAll(tasks)).Select(t => ServerHarness.ChatSummary(t.Body)).ToList();
        Assert.Equal(alone, together);
        Assert.Contains("r1sharp_generation_tokens_total", await h.MetricsAsync());
    }

    [Fact]
    public async Task DisconnectMidStreamFreesTheSlot()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 2 });
        // the tiny model can write its 2000 tokens before the pause lands on a loaded machine: then try again
        CancellationTokenSource cts = null!;
        HttpResponseMessage r = null!;
        for (int attempt = 0; ; attempt++)
        {
            cts = new CancellationTokenSource();
            r = await h.PostAsync(Chat,
                """{"messages":[{"role":"user","content":"Tell me a long story"}],"max_tokens":2000,"temperature":0,"ignore_eos":true,"stream":true}""", ct: cts.Token);
            var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
            // the role chunk comes before the request holds a slot: wait for generated text, which comes after
            string? line;
            while ((line = await reader.ReadLineAsync()) is not null && !(line.StartsWith("data: ") && line.Contains("content\":")))
            {
            }
            Assert.NotNull(line);
            h.Scheduler.Pause();
            var health = JsonDocument.Parse(await h.Http.GetStringAsync("/health")).RootElement;
            if (health.GetProperty("running").GetInt32() == 1) break;
            Assert.True(attempt < 4, "the request finished before the scheduler could be paused, five times");
            h.Scheduler.Resume();
            r.Dispose();
            cts.Dispose();
        }
        Assert.Contains("r1sharp_active_sequences 1", await h.MetricsAsync());

        cts.Cancel();
        r.Dispose();
        cts.Dispose();
        // resume only once the server has seen the disconnect, so the request cannot run to its length meanwhile
        await ServerHarness.WaitUntil(() => h.Scheduler.CancelSignals > 0, "the server sees the disconnect");
        h.Scheduler.Resume();
        await ServerHarness.WaitUntil(() => h.Scheduler.Running == 0, "the slot is free");
        string metrics = await h.MetricsAsync();
        Assert.Contains("r1sharp_active_sequences 0", metrics);
        Assert.Contains("r1sharp_requests_finished_total{finish_reason=\"cancelled\"} 1", metrics);
        // the freed slot serves the next request
        var (status, _) = await h.PostJsonAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}""");
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task RepeatedPromptReusesTheCachedPrefix()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 2 });
        var (_, a) = await h.PostJsonAsync(Chat, Request(3));
        var (_, b) = await h.PostJsonAsync(Chat, Request(3));
        Assert.Equal(ServerHarness.ChatSummary(a), ServerHarness.ChatSummary(b));
        int prompt = b.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        Assert.Equal(prompt - 1, b.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task ShutdownLetsARunningStreamFinish()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ShutdownGrace = TimeSpan.FromSeconds(30) });
        using var r = await h.PostAsync(Chat,
            """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":300,"temperature":0,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}""");
        h.Scheduler.Pause();
        var stopping = h.Server.StopAsync();
        h.Scheduler.Resume();
        var events = await ServerHarness.ReadEventsAsync(r);
        Assert.Equal(300, events[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", events[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        await stopping;
        Assert.False(h.Scheduler.Accepting);
    }
}
