// Cluster benchmark: starts N `r1sharp serve --cluster` nodes on loopback (localhost membership) and drives them
// with multi-turn conversations that share system prompts, every request sent to a random node, once with
// prefix-affinity routing and once with random routing (fresh nodes each time; rounds alternate the two). Reports
// the follow-ups' prefix-hit rate (cached_tokens at least the previous prompt less the 2 tokens the R1 template
// re-renders), the share of prompt tokens served from cache, time to first token and throughput. The nodes share
// this machine's cores: compare the two policies' ratios, not absolute speeds.
//   dotnet run --project bench/R1Sharp.ClusterBench -c Release -- [--model M.gguf] [--nodes 3] [--conversations 12]
//       [--systems 3] [--turns 4] [--system-words 150] [-n 16] [--rounds 1] [-t 1]
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using R1Sharp.Models;
using R1Sharp.Tensors;

var o = Options.Parse(args);
string dir = Directory.CreateTempSubdirectory("r1sharp-clusterbench-").FullName;
try
{
    string model = o.Model ?? SynthesizeModel(dir);
    Console.Error.WriteLine($"model {Path.GetFileName(model)}; {o.Nodes} nodes x {o.Threads} thread(s); {o.Conversations} conversations, " +
                            $"{o.Systems} system prompts of ~{o.SystemWords} words, {o.Turns} turns, {o.OutputTokens} tokens per answer; CPU {Cpu()}");
    var results = new Dictionary<string, List<RunResult>> { ["affinity"] = [], ["random"] = [] };
    for (int round = 0; round < o.Rounds; round++)
        foreach (string policy in round % 2 == 0 ? new[] { "affinity", "random" } : ["random", "affinity"])
        {
            var r = await RunAsync(model, policy, o, seed: round);
            results[policy].Add(r);
            Console.Error.WriteLine($"round {round} {policy}: {r}");
        }

    Console.WriteLine();
    Console.WriteLine("| routing | follow-up prefix hits | prompt tokens from cache | TTFT p50 (follow-ups) | TTFT p90 | answer tokens/s | requests/s |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var (policy, runs) in results)
    {
        var all = RunResult.Merge(runs);
        Console.WriteLine($"| {policy} | {all.HitRate:P0} ({all.Hits}/{all.FollowUps}) | {all.CachedShare:P0} | {all.TtftP50 * 1000:F0} ms | {all.TtftP90 * 1000:F0} ms | {all.TokensPerSecond:F1} | {all.RequestsPerSecond:F2} |");
    }
    var a = RunResult.Merge(results["affinity"]);
    var b = RunResult.Merge(results["random"]);
    Console.WriteLine();
    Console.WriteLine($"affinity / random: hit rate {a.HitRate / Math.Max(1e-9, b.HitRate):F2}x, TTFT p50 {b.TtftP50 / a.TtftP50:F2}x lower, " +
                      $"throughput {a.TokensPerSecond / b.TokensPerSecond:F2}x, requests/s {a.RequestsPerSecond / b.RequestsPerSecond:F2}x");
    return 0;
}
finally
{
    try { Directory.Delete(dir, true); } catch (IOException) { }
}

static string SynthesizeModel(string dir)
{
    // large enough that a prefill costs what a prefix hit saves (5M parameters), small enough for N nodes on 2 cores
    string path = Path.Combine(dir, "bench.gguf");
    var spec = Synthesizer.FindPreset("qwen2", "tiny") with { Name = "bench", Dim = 256, Layers = 6, Heads = 8, KvHeads = 2, FfnDim = 768, ContextLength = 4096 };
    Synthesizer.Write(spec, GgmlType.F32, 3, path);
    return path;
}

static async Task<RunResult> RunAsync(string model, string policy, Options o, int seed)
{
    int primary = FreePort();
    var nodes = new List<Process>();
    var urls = new List<string>();
    try
    {
        for (int i = 0; i < o.Nodes; i++)
        {
            int port = FreePort();
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "serve", "--model", model, "--model-name", "bench",
                         "--port", port.ToString(), "--ctx", "4096", "-t", o.Threads.ToString(), "--parallel", "4", "--cluster",
                         "--cluster-membership", $"localhost:{primary}", "--silo-port", (i == 0 ? primary : FreePort()).ToString(),
                         "--gateway-port", FreePort().ToString(), "--node-name", $"node{i}", "--route", policy })
                psi.ArgumentList.Add(arg);
            var p = Process.Start(psi)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, e) => { if (e.Data is { } l && (l.StartsWith("error") || l.StartsWith("fail"))) Console.Error.WriteLine($"[node{nodes.Count}] {l}"); };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            nodes.Add(p);
            urls.Add($"http://127.0.0.1:{port}/");
            if (i == 0) await WaitAsync(async () => await Get(urls[0] + "health") is not null, "node0 up");
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        await WaitAsync(async () => (await Get(urls[0] + "v1/cluster")) is { } v && JsonDocument.Parse(v).RootElement.GetProperty("members").EnumerateArray()
            .Count(m => m.GetProperty("status").GetString() == "active" && m.GetProperty("slots").ValueKind == JsonValueKind.Number) == o.Nodes, "all nodes routed to");
        // warm-up: JIT on every node, through every node
        foreach (string u in urls) await Chat(http, u, [("user", "warm up")], 4);

        var systems = Enumerable.Range(0, o.Systems).Select(s => SystemPrompt(s, o.SystemWords)).ToArray();
        var clock = Stopwatch.StartNew();
        var perConversation = await Task.WhenAll(Enumerable.Range(0, o.Conversations).Select(async c =>
        {
            var random = new Random(seed * 1000 + c);
            var messages = new List<(string Role, string Content)> { ("system", systems[c % o.Systems]) };
            var samples = new List<Sample>();
            int previous = -1;
            for (int t = 0; t < o.Turns; t++)
            {
                messages.Add(("user", $"Conversation {c}, question {t}: what follows from the rules above for case {c * 7 + t}?"));
                var r = await Chat(http, urls[random.Next(urls.Count)], messages, o.OutputTokens);
                samples.Add(new Sample(previous, r.Prompt, r.Cached, r.Completion, r.Ttft));
                previous = r.Prompt;
                messages.Add(("assistant", r.Content));
            }
            return samples;
        }));
        double wall = clock.Elapsed.TotalSeconds;
        return new RunResult(perConversation.SelectMany(s => s).ToList(), wall);
    }
    finally
    {
        foreach (var p in nodes)
        {
            try { p.Kill(entireProcessTree: true); p.WaitForExit(5000); } catch (InvalidOperationException) { }
            p.Dispose();
        }
    }
}

static string SystemPrompt(int s, int words)
{
    string[] topics = ["contract law", "orbital mechanics", "baking bread", "chess endgames", "tax rules", "river ecology"];
    var sb = new StringBuilder($"You are an expert in {topics[s % topics.Length]}. Follow these house rules when you answer:");
    for (int i = 0; sb.Length < words * 6; i++) sb.Append($" Rule {i}: consider case {s}-{i} carefully, cite the rule, and keep the answer short.");
    return sb.ToString();
}

static async Task<(int Prompt, int Cached, int Completion, double Ttft, string Content)> Chat(HttpClient http, string url,
    List<(string Role, string Content)> messages, int maxTokens)
{
    var body = new StringBuilder("{\"model\":\"bench\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"temperature\":0,\"ignore_eos\":true,\"reasoning_budget\":4,\"max_tokens\":");
    body.Append(maxTokens).Append(",\"messages\":[");
    body.Append(string.Join(',', messages.Select(m => $"{{\"role\":\"{m.Role}\",\"content\":{JsonSerializer.Serialize(m.Content)}}}"))).Append("]}");
    var started = Stopwatch.GetTimestamp();
    using var req = new HttpRequestMessage(HttpMethod.Post, url + "v1/chat/completions") { Content = new StringContent(body.ToString(), Encoding.UTF8, "application/json") };
    using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
    if (!resp.IsSuccessStatusCode) throw new InvalidOperationException($"{url}: HTTP {(int)resp.StatusCode}: {await resp.Content.ReadAsStringAsync()}");
    using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
    double ttft = -1;
    var content = new StringBuilder();
    int prompt = 0, cached = 0, completion = 0;
    while (await reader.ReadLineAsync() is { } line)
    {
        if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
        var e = JsonDocument.Parse(line[6..]).RootElement;
        if (e.TryGetProperty("error", out var err)) throw new InvalidOperationException($"{url}: {err}");
        if (e.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
        {
            prompt = u.GetProperty("prompt_tokens").GetInt32();
            cached = u.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
            completion = u.GetProperty("completion_tokens").GetInt32();
        }
        foreach (var ch in e.GetProperty("choices").EnumerateArray())
        {
            var d = ch.GetProperty("delta");
            bool text = (d.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String && c.GetString()!.Length > 0)
                        | (d.TryGetProperty("reasoning_content", out var rc) && rc.ValueKind == JsonValueKind.String && rc.GetString()!.Length > 0);
            if (text && ttft < 0) ttft = Stopwatch.GetElapsedTime(started).TotalSeconds;
            if (c.ValueKind == JsonValueKind.String) content.Append(c.GetString());
        }
    }
    return (prompt, cached, completion, ttft, content.ToString());
}

static async Task<string?> Get(string url)
{
    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
    try { return await http.GetStringAsync(url); }
    catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return null; }
}

static async Task WaitAsync(Func<Task<bool>> condition, string what)
{
    var deadline = DateTime.UtcNow.AddSeconds(120);
    while (!await condition())
    {
        if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
        await Task.Delay(250);
    }
}

static int FreePort()
{
    using var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    return ((IPEndPoint)l.LocalEndpoint).Port;
}

static string Cpu() => File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() ?? "?"
    : "?";

internal sealed record Sample(int Previous, int Prompt, int Cached, int Completion, double Ttft);

internal sealed record RunResult(List<Sample> Samples, double Wall)
{
    private IEnumerable<Sample> FollowUpSamples => Samples.Where(s => s.Previous >= 0);
    public int FollowUps => FollowUpSamples.Count();
    // the R1 template re-renders the last 2 tokens of the previous prompt ("<think>\n")
    public int Hits => FollowUpSamples.Count(s => s.Cached >= s.Previous - 2);
    public double HitRate => (double)Hits / Math.Max(1, FollowUps);
    public double CachedShare => (double)Samples.Sum(s => s.Cached) / Math.Max(1, Samples.Sum(s => s.Prompt));
    public double TtftP50 => Percentile(0.5);
    public double TtftP90 => Percentile(0.9);
    public double TokensPerSecond => Samples.Sum(s => s.Completion) / Wall;
    public double RequestsPerSecond => Samples.Count / Wall;

    private double Percentile(double q)
    {
        var t = FollowUpSamples.Select(s => s.Ttft).Order().ToList();
        return t.Count == 0 ? double.NaN : t[Math.Min(t.Count - 1, (int)(q * t.Count))];
    }

    public static RunResult Merge(List<RunResult> runs) => new(runs.SelectMany(r => r.Samples).ToList(), runs.Sum(r => r.Wall));

    public override string ToString() =>
        $"hits {Hits}/{FollowUps}, cached {CachedShare:P0} of prompt tokens, TTFT p50 {TtftP50 * 1000:F0} ms, {TokensPerSecond:F1} answer tokens/s, {Wall:F1} s";
}

internal sealed record Options(string? Model, int Nodes, int Conversations, int Systems, int Turns, int SystemWords, int OutputTokens, int Rounds, int Threads)
{
    public static Options Parse(string[] args)
    {
        var o = new Options(null, 3, 12, 3, 4, 150, 16, 1, 1);
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--model" => o with { Model = Next() },
                "--nodes" => o with { Nodes = int.Parse(Next()) },
                "--conversations" => o with { Conversations = int.Parse(Next()) },
                "--systems" => o with { Systems = int.Parse(Next()) },
                "--turns" => o with { Turns = int.Parse(Next()) },
                "--system-words" => o with { SystemWords = int.Parse(Next()) },
                "-n" => o with { OutputTokens = int.Parse(Next()) },
                "--rounds" => o with { Rounds = int.Parse(Next()) },
                "-t" => o with { Threads = int.Parse(Next()) },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        return o;
    }
}
