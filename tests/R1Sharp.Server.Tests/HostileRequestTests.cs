// Regressions found by the soak and chaos run (bench/R1Sharp.Soak): each hostile request here once got a 500, an
// empty answer, or the wrong status under load; each must now be the OpenAI error object a client can act on.
using System.Net;
using System.Text;
using System.Text.Json;
using R1Sharp.Soak;

namespace R1Sharp.Server.Tests;

public sealed class HostileRequestTests
{
    private const string Chat = "/v1/chat/completions";
    private const string Hi = """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}""";

    private static void AssertError(int status, JsonElement body, int expected, string? param = null)
    {
        Assert.Equal(expected, status);
        var e = body.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString()));
        Assert.Equal(expected == 429 ? "rate_limit_error" : "invalid_request_error", e.GetProperty("type").GetString());
        if (param != null) Assert.Equal(param, e.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("""{"messages":[null]}""", "messages[0]")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"},null]}""", "messages[1]")]
    [InlineData("""{"messages":[{"role":"assistant","content":"x","tool_calls":[null]},{"role":"user","content":"hi"}]}""", "messages[0].tool_calls[0]")]
    [InlineData("""{"messages":[{"role":"assistant","content":"x","tool_calls":[{"type":"function","function":null}]},{"role":"user","content":"hi"}]}""", "messages[0].tool_calls[0]")]
    [InlineData("""{"messages":[{"role":"assistant","content":"x","tool_calls":[{}]},{"role":"user","content":"hi"}]}""", "messages[0].tool_calls[0]")]
    public async Task NullAndNamelessEntriesAre400(string json, string param)
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync(Chat, json);
        AssertError(status, body, 400, param);
    }

    [Theory]
    [InlineData("ffffffffff\r\n{}\r\n0\r\n\r\n")] // a chunk size past 2^31: Kestrel throws an IOException, once a 500
    [InlineData("zz\r\n")]                          // not a chunk size: a BadHttpRequestException, once a 500
    public async Task MalformedChunkedBodiesAre400(string chunked)
    {
        await using var h = await ServerHarness.StartAsync();
        var endPoint = new IPEndPoint(IPAddress.Loopback, h.BaseAddress.Port);
        string raw = $"POST {Chat} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var r = await RawHttp.SendAsync(endPoint, new RawRequest("POST", Chat, []) { Raw = Encoding.ASCII.GetBytes(raw) }, cts.Token);
        AssertError(r.Status, JsonDocument.Parse(r.Body).RootElement, 400);
        Assert.Contains("r1sharp_http_requests_total{endpoint=\"chat\",code=\"400\"} 1", await h.MetricsAsync());
    }

    [Fact]
    public async Task ABadTokenIdIs400EvenWhenTheQueueIsFull()
    {
        // was a 429: the first prompt's request was queued, the queue was full at the second, before its ids were checked
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 1, MaxQueue = 1 });
        h.Scheduler.Pause();
        var a = h.PostJsonAsync(Chat, Hi);
        var b = h.PostJsonAsync(Chat, Hi);
        await ServerHarness.WaitUntil(() => h.Scheduler.Queued == 2, "two requests are queued");
        var (status, body) = await h.PostJsonAsync("/v1/completions", """{"prompt":[[1,2],[-5]],"max_tokens":4}""");
        AssertError(status, body, 400);
        Assert.Contains("-5", body.GetProperty("error").GetProperty("message").GetString());
        h.Scheduler.Resume();
        Assert.Equal(200, (await a).Status);
        Assert.Equal(200, (await b).Status);
    }

    [Fact]
    public async Task AGroupTheQueueCannotHoldIsRefusedWhole()
    {
        // n = 3 with room for 2: was queued in part, then refused, leaving cancelled requests behind in /metrics
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 1, MaxQueue = 1 });
        h.Scheduler.Pause();
        var (status, body) = await h.PostJsonAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"n":3}""");
        AssertError(status, body, 429);
        Assert.Equal(0, h.Scheduler.Queued);
        h.Scheduler.Resume();
        (status, _) = await h.PostJsonAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"n":2}""");
        Assert.Equal(200, status);
        string metrics = await h.MetricsAsync();
        Assert.DoesNotContain("finish_reason=\"cancelled\"", metrics);
        Assert.Contains("r1sharp_http_requests_total{endpoint=\"chat\",code=\"429\"} 1", metrics);
    }

    [Fact]
    public async Task AHugeMaxTokensIsCountedWithoutOverflow()
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync("/v1/completions", $$"""{"prompt":"Hi","max_tokens":{{int.MaxValue}}}""");
        AssertError(status, body, 400, "prompt");
        string message = body.GetProperty("error").GetProperty("message").GetString()!;
        Assert.DoesNotContain("-", message.Split("tokens")[1]); // "you requested -2147483647 tokens" before
        Assert.Contains($"{int.MaxValue}", message);
    }

    [Fact]
    public async Task HealthCountsIdleSlotsAndMetricsCountAnswersByStatus()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 3 });
        Assert.Equal(200, (await h.PostJsonAsync(Chat, Hi)).Status);
        Assert.Equal(400, (await h.PostJsonAsync(Chat, """{"messages":[]}""")).Status);
        Assert.Equal(404, (await h.PostJsonAsync("/v1/completions", """{"model":"x","prompt":"Hi"}""")).Status);
        var health = JsonDocument.Parse(await h.Http.GetStringAsync("/health")).RootElement;
        Assert.Equal(3, health.GetProperty("slots_idle").GetInt32());
        string metrics = await h.MetricsAsync();
        Assert.Contains("r1sharp_http_requests_total{endpoint=\"chat\",code=\"200\"} 1", metrics);
        Assert.Contains("r1sharp_http_requests_total{endpoint=\"chat\",code=\"400\"} 1", metrics);
        Assert.Contains("r1sharp_http_requests_total{endpoint=\"completions\",code=\"404\"} 1", metrics);
        Assert.Contains("process_working_set_bytes", metrics);
    }

    [Fact]
    public async Task AClientGoneBeforeTheAnswerIsCounted499()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { Parallel = 1 });
        h.Scheduler.Pause();
        using (var cts = new CancellationTokenSource())
        {
            var pending = h.PostAsync(Chat, """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8}""", ct: cts.Token);
            await ServerHarness.WaitUntil(() => h.Scheduler.Queued == 1, "the request is queued");
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        }
        h.Scheduler.Resume();
        await ServerHarness.WaitUntil(() => h.Scheduler.Queued + h.Scheduler.Running == 0, "the request is gone");
        string metrics = "";
        await ServerHarness.WaitUntil(() => (metrics = h.MetricsAsync().Result).Contains("code=\"499\"} 1"), "the request is counted");
        Assert.Contains("finish_reason=\"cancelled\"} 1", metrics);
    }

    public static TheoryData<string> FuzzedBodies() => new(Directory.GetFiles(RepoPaths.Get("fuzz/crashes/request")).Select(Path.GetFileName).Order()!);

    [Theory]
    [MemberData(nameof(FuzzedBodies))]
    public async Task BodiesTheFuzzerFoundAre400(string file)
    {
        // found by fuzzing the request binding (fuzz/crashes/request; the first byte picks the endpoint): invalid UTF-8
        // in a member name or inside a tool's schema was read only when the field table or the template got to it, a 500
        byte[] data = File.ReadAllBytes(RepoPaths.Get($"fuzz/crashes/request/{file}"));
        await using var h = await ServerHarness.StartAsync();
        var content = new ByteArrayContent(data, 1, data.Length - 1);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var r = await h.Http.PostAsync((data[0] & 1) != 0 ? Chat : "/v1/completions", content);
        AssertError((int)r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement, 400);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"\ud800 hi"}]}""")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","type":"string"}}}}""")]
    public async Task UnreadableTextAndRepeatedSchemaKeysAre400(string json)
    {
        await using var h = await ServerHarness.StartAsync();
        var (status, body) = await h.PostJsonAsync(Chat, json);
        AssertError(status, body, 400);
    }
}

public sealed class IdleTrimTests
{
    [Fact]
    public async Task AnIdleServerCollectsOnceAfterActivityAndNeverWithARequestInFlight()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { IdleTrimAfter = TimeSpan.FromMilliseconds(200) });
        var trimmer = h.Server.Context.Trimmer!;
        await Task.Delay(600);
        Assert.Equal(0, trimmer.Trims); // nothing happened yet: nothing to give back
        Assert.Equal(200, (await h.PostJsonAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}""")).Status);
        await ServerHarness.WaitUntil(() => trimmer.Trims == 1, "the idle server collects");
        await Task.Delay(600);
        Assert.Equal(1, trimmer.Trims); // once per idle spell

        h.Scheduler.Pause();
        var pending = h.PostJsonAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}""");
        await ServerHarness.WaitUntil(() => h.Scheduler.Queued == 1, "a request waits");
        await Task.Delay(600);
        Assert.Equal(1, trimmer.Trims); // a request in flight holds the collection off
        h.Scheduler.Resume();
        Assert.Equal(200, (await pending).Status);
        await ServerHarness.WaitUntil(() => trimmer.Trims == 2, "the server collects once idle again");
    }
}
