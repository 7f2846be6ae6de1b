// The cluster as users run it: a real redis-server for membership, three `r1sharp serve --cluster` processes on
// 127.0.0.1 over a tiny synthesized model, the npm `openai` client sending multi-turn conversations to random nodes,
// then one node killed (SIGKILL) under load. What must survive: follow-ups reuse their cache, no request to a
// living node fails or hangs except those that were running on the lost node, which end with a clean error within
// the detection time; membership shows the loss within 10 s; new requests succeed.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Cluster.Tests;

public sealed class EndToEndTests(ITestOutputHelper output)
{
    private const int Nodes = 3, Victim = 2;

    [Fact]
    public async Task ThreeNodesBehindRedisServeConversationsAndSurviveAKill()
    {
        string redisServer = FindRedis();
        string clientDir = NpmPackages.Install("openai-client");
        string dir = Directory.CreateTempSubdirectory("r1sharp-e2e-").FullName;
        var processes = new List<Process>();
        try
        {
            string model = Path.Combine(dir, "tiny.gguf");
            Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 7, model);
            int redisPort = FreePort();
            var redis = Start(redisServer, ["--port", redisPort.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], processes);
            await WaitForLine(redis, "Ready to accept connections", TimeSpan.FromSeconds(20), "redis-server");

            var httpPorts = Enumerable.Range(0, Nodes).Select(_ => FreePort()).ToArray();
            var nodes = new Process[Nodes];
            string clusterId = $"e2e-{Guid.NewGuid():N}";
            for (int i = 0; i < Nodes; i++)
                nodes[i] = Start("dotnet", [Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "serve", "--model", model, "--model-name", "tiny",
                    "--port", httpPorts[i].ToString(), "--ctx", "2048", "-t", "1", "--cluster", "--cluster-membership", $"redis://127.0.0.1:{redisPort}",
                    "--silo-port", FreePort().ToString(), "--gateway-port", FreePort().ToString(), "--node-name", $"node{i}",
                    "--cluster-id", clusterId], processes);
            for (int i = 0; i < Nodes; i++) await WaitForLine(nodes[i], "r1sharp: serving", TimeSpan.FromSeconds(90), $"node{i}");
            string[] urls = httpPorts.Select(p => $"http://127.0.0.1:{p}/").ToArray();
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            await WaitUntilAsync(async () => (await ClusterView(http, urls[0])).GetProperty("members").EnumerateArray()
                .Count(m => m.GetProperty("status").GetString() == "active" && m.GetProperty("model_check").GetString() == "ok" && m.GetProperty("slots").ValueKind == JsonValueKind.Number) == Nodes,
                TimeSpan.FromSeconds(30), "every node sees three verified members");

            var client = Start("node", [Path.Combine(clientDir, "cluster.mjs"), string.Join(',', urls), Victim.ToString(), "7"], processes, clientDir, stdin: true);
            await WaitForLine(client, "LOAD", TimeSpan.FromSeconds(120), "the npm client's conversations");
            nodes[Victim].Kill(); // SIGKILL: no goodbye to the cluster
            client.StandardInput.WriteLine("KILLED");
            client.StandardInput.Flush();
            string summary = await WaitForLine(client, "{", TimeSpan.FromSeconds(120), "the npm client's load after the kill");
            output.WriteLine(summary);
            var s = JsonDocument.Parse(summary).RootElement;

            // follow-ups reuse their conversation's cache: at least the previous prompt less the 2 tokens R1 re-renders
            var followUps = s.GetProperty("followUps").EnumerateArray().ToList();
            int hits = followUps.Count(f => f.GetProperty("cached").GetInt32() >= f.GetProperty("previous").GetInt32() - 2);
            Assert.Equal(18, followUps.Count);
            Assert.True(hits >= 0.9 * followUps.Count, $"{hits} of {followUps.Count} follow-ups reused their conversation's cache");

            // requests to living nodes: done, or (running on the lost node) ended with a clean error soon after the kill
            var load = s.GetProperty("load").EnumerateArray().ToList();
            var failed = load.Where(l => !l.GetProperty("ok").GetBoolean()).ToList();
            Assert.All(load.Where(l => l.GetProperty("ok").GetBoolean()), l => Assert.Equal(1200, l.GetProperty("tokens").GetInt32()));
            Assert.All(failed, f => Assert.Equal("node_unavailable", f.GetProperty("error").GetProperty("code").GetString()));
            Assert.All(failed, f => Assert.InRange(f.GetProperty("endedAfterKillMs").GetInt32(), 0, 10_000));
            Assert.True(failed.Count > 0, "no stream ran on the killed node: the failure path was not exercised");
            Assert.True(failed.Count < load.Count, "every stream failed");

            // membership shows the loss within 10 s; new requests succeed on the survivors
            Assert.InRange(s.GetProperty("deadAfterMs").GetInt32(), 0, 10_000);
            Assert.All(s.GetProperty("after").EnumerateArray(), a => Assert.True(a.GetProperty("ok").GetBoolean(), a.ToString()));
            Assert.True(await client.WaitForExitAsync(TimeSpan.FromSeconds(10)) && client.ExitCode == 0);
        }
        finally
        {
            foreach (var p in processes)
            {
                try { if (!p.HasExited) p.Kill(entireProcessTree: true); p.WaitForExit(5000); }
                catch (InvalidOperationException) { }
                p.Dispose();
            }
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static string FindRedis()
    {
        foreach (string d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/sbin"))
            if (File.Exists(Path.Combine(d, "redis-server"))) return Path.Combine(d, "redis-server");
        throw new InvalidOperationException("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private sealed record Lines(Queue<string> Queue, SemaphoreSlim Signal);
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Process, Lines> s_lines = new();

    private Process Start(string exe, string[] args, List<Process> processes, string? cwd = null, bool stdin = false)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin, UseShellExecute = false };
        if (cwd != null) psi.WorkingDirectory = cwd;
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {exe}");
        processes.Add(p);
        var lines = new Lines(new Queue<string>(), new SemaphoreSlim(0));
        s_lines.Add(p, lines);
        string name = Path.GetFileName(args.Length > 0 && exe == "dotnet" ? "r1sharp" : exe);
        void Take(string? line)
        {
            if (line is null) return;
            lock (lines.Queue) lines.Queue.Enqueue(line);
            lines.Signal.Release();
            if (!line.StartsWith('{')) try { output.WriteLine($"[{name} {p.Id}] {line}"); } catch (InvalidOperationException) { }
        }
        p.OutputDataReceived += (_, e) => Take(e.Data);
        p.ErrorDataReceived += (_, e) => Take(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Waits for a line of <paramref name="p"/>'s output starting with (or containing) <paramref name="text"/>.</summary>
    private static async Task<string> WaitForLine(Process p, string text, TimeSpan timeout, string what)
    {
        var lines = s_lines.GetValue(p, _ => throw new InvalidOperationException());
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            while (true)
            {
                string? line;
                lock (lines.Queue) line = lines.Queue.Count > 0 ? lines.Queue.Dequeue() : null;
                if (line is null) break;
                if (line.StartsWith(text, StringComparison.Ordinal) || (text.Length > 1 && line.Contains(text, StringComparison.Ordinal))) return line;
            }
            var left = deadline - DateTime.UtcNow;
            if (p.HasExited)
            {
                // the exit can be seen before the last lines of its output are read: WaitForExit() waits for them
                p.WaitForExit();
                lock (lines.Queue) if (lines.Queue.Count > 0) continue;
                throw new InvalidOperationException($"{what} exited ({p.ExitCode}) before printing '{text}'");
            }
            if (left <= TimeSpan.Zero) throw new TimeoutException($"{what} did not print '{text}' within {timeout}");
            await lines.Signal.WaitAsync(left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500));
        }
    }

    private static async Task<JsonElement> ClusterView(HttpClient http, string url) =>
        JsonDocument.Parse(await http.GetStringAsync(url + "v1/cluster")).RootElement;

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(200);
        }
    }
}

internal static class ProcessExtensions
{
    public static async Task<bool> WaitForExitAsync(this Process p, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); return true; }
        catch (OperationCanceledException) { return false; }
    }
}
