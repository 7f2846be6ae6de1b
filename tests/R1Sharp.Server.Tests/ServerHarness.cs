// Starts the server in-process on a free loopback port over a tiny synthesized model (one per server: the
// model's workspace belongs to one scheduler), and speaks raw HTTP to it.
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace R1Sharp.Server.Tests;

public sealed class ServerHarness : IAsyncDisposable
{
    private static readonly Lazy<string> s_modelPath = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-server-").FullName;
        string path = Path.Combine(dir, "tiny.gguf");
        Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 7, path);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        return path;
    });

    public static string ModelPath => s_modelPath.Value;

    private readonly LoadedModel _model;

    /// <summary>The model the server runs.</summary>
    public LoadedModel Model => _model;

    private ServerHarness(R1Server server, LoadedModel model)
    {
        Server = server;
        _model = model;
        Http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public R1Server Server { get; }
    public HttpClient Http { get; }
    public Uri BaseAddress => Server.BaseAddress;
    public Scheduler Scheduler => Server.Scheduler;

    public static async Task<ServerHarness> StartAsync(Func<ServerOptions, ServerOptions>? configure = null, ServerHooks? hooks = null)
    {
        var options = new ServerOptions { ModelPath = ModelPath, Port = 0, Parallel = 4, ContextSize = 2048 };
        if (configure != null) options = configure(options);
        var model = LoadedModel.Load(options.ModelPath, threads: 1);
        var server = R1Server.Create(options, model, hooks: hooks);
        await server.StartAsync();
        return new ServerHarness(server, model);
    }

    public Task<HttpResponseMessage> PostAsync(string path, string json, string? apiKey = null, CancellationToken ct = default)
    {
        var msg = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey != null) msg.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return Http.SendAsync(msg, HttpCompletionOption.ResponseHeadersRead, ct);
    }

    public async Task<(int Status, JsonElement Body)> PostJsonAsync(string path, string json, string? apiKey = null)
    {
        using var r = await PostAsync(path, json, apiKey);
        string text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>What a whole chat completion says: reasoning|content, completion tokens, finish reason.</summary>
    public static (string Text, int Tokens, string Finish) ChatSummary(JsonElement body)
    {
        var c = body.GetProperty("choices")[0];
        var m = c.GetProperty("message");
        string reasoning = m.TryGetProperty("reasoning_content", out var r) ? r.GetString()! : "";
        return (reasoning + "|" + m.GetProperty("content").GetString(), body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(),
            c.GetProperty("finish_reason").GetString()!);
    }

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
    public static async Task WaitUntil(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(10);
        }
    }

    /// <summary>The SSE data payloads of a streamed response, up to [DONE].</summary>
    public static async Task<List<JsonElement>> ReadEventsAsync(HttpResponseMessage r)
    {
        var events = new List<JsonElement>();
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            string data = line[6..];
            if (data == "[DONE]") return events;
            events.Add(JsonDocument.Parse(data).RootElement.Clone());
        }
        throw new InvalidDataException("the stream ended without [DONE]");
    }

    public async Task<string> MetricsAsync() => await Http.GetStringAsync("/metrics");

    public async ValueTask DisposeAsync()
    {
        Server.Scheduler.Resume();
        Http.Dispose();
        await Server.DisposeAsync();
        _model.Dispose();
    }
}
