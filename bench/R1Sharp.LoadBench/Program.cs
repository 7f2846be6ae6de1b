// Load benchmark for `serve`: starts the server in-process on a model file and, for 1, 4 and 8 concurrent
// streams (configurable), measures aggregate decode tokens/s (and its ratio to one stream), time to first token and
// inter-token latency percentiles over streamed /v1/completions requests of fixed prompt and output lengths
// (ignore_eos). The levels alternate round by round. Aggregate decode is given two ways: while every stream decodes
// (the tokens streamed between the last first token and the first stream's end, over that window: the batched steady
// state), and from the first first token to the last token (which also holds any prefill step that stalls a stream
// that started early).
//   dotnet run --project bench/R1Sharp.LoadBench -c Release -- --model M.gguf [--streams 1,4,8] [-p 128] [-n 64] [--rounds 2] [-t N]
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using R1Sharp.Server;

var opts = Args.Parse(args);
if (opts.Model is null || !File.Exists(opts.Model))
{
    Console.Error.WriteLine("usage: R1Sharp.LoadBench --model PATH [--streams 1,4,8] [-p PROMPT_TOKENS] [-n OUTPUT_TOKENS] [--rounds R] [-t THREADS]");
    return 1;
}
int maxStreams = opts.Streams.Max();
var server = R1Server.Create(new ServerOptions
{
    ModelPath = opts.Model,
    Port = 0,
    Parallel = maxStreams,
    ContextSize = opts.PromptTokens + opts.OutputTokens + 8,
    Threads = opts.Threads,
    MaxQueue = maxStreams * 2,
});
await server.StartAsync();
await server.Context.Model.InMemory; // measured on the weights' in-memory layout, not the mapping served meanwhile
using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(30) };
Console.Error.WriteLine($"model {Path.GetFileName(opts.Model)}, prompt {opts.PromptTokens} tokens, output {opts.OutputTokens} tokens, {opts.Rounds} round(s) per level");

// warm-up: JIT and first-touch of the mapped weights
await Stream(http, 0, 8, 4);

// levels alternate round by round (1, 4, 8, 1, 4, 8, ...), so a noisy moment of the machine does not fall on one level only
var ttft = opts.Streams.ToDictionary(c => c, _ => new List<double>());
var itl = opts.Streams.ToDictionary(c => c, _ => new List<double>());
var tokens = opts.Streams.ToDictionary(c => c, _ => 0L);
var decodeSeconds = opts.Streams.ToDictionary(c => c, _ => 0.0);
var steadyTokens = opts.Streams.ToDictionary(c => c, _ => 0L);
var steadySeconds = opts.Streams.ToDictionary(c => c, _ => 0.0);
for (int round = 0; round < opts.Rounds; round++)
{
    foreach (int c in opts.Streams)
    {
        var results = await Task.WhenAll(Enumerable.Range(0, c).Select(i => Stream(http, 1000 * round + 100 * c + i + 1, opts.PromptTokens, opts.OutputTokens)));
        foreach (var r in results)
        {
            ttft[c].Add(r.Ttft);
            itl[c].AddRange(r.Gaps);
            tokens[c] += r.Tokens - 1;
        }
        // decode throughput: tokens after each stream's first, over the span from the first first-token to the last token
        double span = results.Max(r => r.End) - results.Min(r => r.FirstTokenAt);
        decodeSeconds[c] += span;
        // steady state: the tokens each stream streamed while all of them were decoding
        double w0 = results.Max(r => r.FirstTokenAt), w1 = results.Min(r => r.End);
        long steady = results.Sum(r => r.TokenTimes.Count(t => t > w0 && t <= w1));
        steadyTokens[c] += steady;
        steadySeconds[c] += w1 - w0;
        Console.Error.WriteLine($"round {round + 1}, {c} streams: {steady / (w1 - w0):F1} tok/s while all decode, {results.Sum(r => r.Tokens - 1) / span:F1} tok/s first token to last");
    }
}
double single = opts.Streams.Contains(1) ? tokens[1] / decodeSeconds[1] : double.NaN;
double singleSteady = opts.Streams.Contains(1) ? steadyTokens[1] / steadySeconds[1] : double.NaN;
Console.WriteLine("| streams | decode tok/s, all decoding | vs 1 stream | decode tok/s, first token to last | vs 1 stream | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | ITL p50 ms | ITL p90 ms | ITL p99 ms |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
foreach (int c in opts.Streams)
{
    double rate = tokens[c] / decodeSeconds[c], steady = steadyTokens[c] / steadySeconds[c];
    Console.WriteLine($"| {c} | {steady:F1} | {steady / singleSteady:F2}x | {rate:F1} | {rate / single:F2}x | {P(ttft[c], 50):F0} | {P(ttft[c], 90):F0} | {P(ttft[c], 99):F0} | " +
                      $"{P(itl[c], 50):F1} | {P(itl[c], 90):F1} | {P(itl[c], 99):F1} |");
}
await server.DisposeAsync();
return 0;

static double P(List<double> xs, double p)
{
    if (xs.Count == 0) return double.NaN;
    var s = xs.OrderBy(x => x).ToArray();
    return s[(int)Math.Min(s.Length - 1, Math.Ceiling(p / 100 * s.Length) - 1)];
}

// One streamed completion: token ids 1..250 (valid in every vocabulary), salted so no two prompts share a prefix.
static async Task<StreamResult> Stream(HttpClient http, int salt, int promptTokens, int outputTokens)
{
    var prompt = Enumerable.Range(0, promptTokens).Select(i => (i * 37 + salt * 101 + 3) % 250 + 1);
    string body = "{\"prompt\":[" + string.Join(',', prompt) + "],\"max_tokens\":" + outputTokens +
                  ",\"temperature\":0,\"ignore_eos\":true,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    var clock = Stopwatch.StartNew();
    using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
    using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
    resp.EnsureSuccessStatusCode();
    using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
    var times = new List<double>();
    int tokens = 0;
    while (await reader.ReadLineAsync() is { } line)
    {
        if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
        if (line == "data: [DONE]") break;
        using var doc = JsonDocument.Parse(line.AsMemory(6));
        var root = doc.RootElement;
        if (root.TryGetProperty("usage", out var u)) tokens = u.GetProperty("completion_tokens").GetInt32();
        if (root.GetProperty("choices").GetArrayLength() > 0 && root.GetProperty("choices")[0].GetProperty("text").GetString()!.Length > 0)
            times.Add(clock.Elapsed.TotalMilliseconds);
    }
    var gaps = times.Zip(times.Skip(1), (a, b) => b - a).ToList();
    double now = Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
    double t0 = now - clock.Elapsed.TotalSeconds;
    return new StreamResult(times.Count > 0 ? times[0] : double.NaN, gaps, Math.Max(tokens, 1), times.Select(t => t0 + t / 1000).ToList());
}

/// <summary>One stream's figures; <see cref="TokenTimes"/> are the times (seconds) at which its text chunks arrived.</summary>
internal sealed record StreamResult(double Ttft, List<double> Gaps, int Tokens, List<double> TokenTimes)
{
    public double FirstTokenAt => TokenTimes[0];
    public double End => TokenTimes[^1];
}

internal sealed record Args(string? Model, int[] Streams, int PromptTokens, int OutputTokens, int Rounds, int Threads)
{
    public static Args Parse(string[] a)
    {
        string? model = null;
        int[] streams = [1, 4, 8];
        int p = 128, n = 64, rounds = 2, threads = 0;
        for (int i = 0; i + 1 < a.Length; i += 2)
        {
            switch (a[i])
            {
                case "--model" or "-m": model = a[i + 1]; break;
                case "--streams": streams = a[i + 1].Split(',').Select(int.Parse).ToArray(); break;
                case "-p": p = int.Parse(a[i + 1]); break;
                case "-n": n = int.Parse(a[i + 1]); break;
                case "--rounds": rounds = int.Parse(a[i + 1]); break;
                case "-t" or "--threads": threads = int.Parse(a[i + 1]); break;
                default: throw new ArgumentException($"unknown option {a[i]}");
            }
        }
        return new Args(model, streams, p, n, rounds, threads);
    }
}
