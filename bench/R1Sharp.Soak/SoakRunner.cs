// The soak and chaos run: `serve` in its own process, many more clients than slots and a short queue, requests in
// bursts drawn from Scenarios, every answer checked as it comes. Between bursts the server must go idle, a greedy
// probe must answer as it did the first time, and its resident memory is sampled; at the end /health must show
// every slot free and /metrics must account for what the clients saw.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace R1Sharp.Soak;

public sealed record SoakOptions
{
    public required string Model { get; init; }
    /// <summary>r1sharp.dll (the CLI); default: the one beside this assembly.</summary>
    public string ServerDll { get; init; } = Path.Combine(AppContext.BaseDirectory, "r1sharp.dll");
    public int Requests { get; init; } = 800;
    public int Clients { get; init; } = 32;
    public int Slots { get; init; } = 4;
    public int MaxQueue { get; init; } = 8;
    public int Context { get; init; } = 512;
    public int Bursts { get; init; } = 5;
    public int Threads { get; init; } = 2;
    public int Seed { get; init; } = 1;
    /// <summary>Longest any one request may take, queueing included.</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// Requests of the same mix sent first (default: as many as one burst), so that the memory compared afterwards is
    /// that of a server whose heaps have grown to their working size.
    /// </summary>
    public int? WarmUp { get; init; }
    /// <summary>Largest growth of resident memory from after the middle burst to after the last one.</summary>
    public double MaxMemoryGrowth { get; init; } = 0.10;
    /// <summary>How long the server is left idle after each burst before its memory is read.</summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(3);
    public Action<string>? Progress { get; init; }
    /// <summary>Only these kinds of request (Scenarios.KindNames); all when null.</summary>
    public IReadOnlySet<string>? Only { get; init; }
}

/// <param name="CommittedBytes">What the server's GC has committed (dotnet_gc_committed_bytes).</param>
/// <param name="OpenFiles">File descriptors the server holds (sockets included).</param>
public sealed record BurstSample(int Burst, long ResidentBytes, long CommittedBytes, int OpenFiles, int Threads, TimeSpan Elapsed);

public sealed class SoakResult
{
    public required SoakOptions Options { get; init; }
    public Dictionary<string, int> Outcomes { get; } = [];
    public Dictionary<string, int> Kinds { get; } = [];
    public List<string> Violations { get; } = [];
    public List<double> SuccessSeconds { get; } = [];
    public List<double> FirstByteSeconds { get; } = [];
    public List<double> RefusedSeconds { get; } = [];
    public List<BurstSample> Bursts { get; } = [];
    public long ResidentBefore { get; set; }
    public int Sent { get; set; }
    public int Probes { get; set; }
    public string ProbeAnswer { get; set; } = "";
    public TimeSpan Elapsed { get; set; }
    public Dictionary<string, double> Metrics { get; set; } = [];
    public string Health { get; set; } = "";
    public int? ExitCode { get; set; }
    public bool Passed => Violations.Count == 0;
}

public sealed class SoakRunner
{
    private readonly SoakOptions _o;
    private readonly SoakResult _result;
    private ServerProcess _server = null!;
    private readonly Lock _gate = new();

    // what the clients saw, for the accounting against /metrics (endpoints chat and completions only)
    private int _sent, _unseen, _seenChoices200, _seenStop, _seenLength, _droppedChoices;
    private long _seenCompletionTokens;
    private readonly Dictionary<int, int> _seen = [];

    public SoakRunner(SoakOptions o)
    {
        _o = o;
        _result = new SoakResult { Options = o };
    }

    public static Task<SoakResult> RunAsync(SoakOptions o) => new SoakRunner(o).RunAsync();

    private async Task<SoakResult> RunAsync()
    {
        var clock = Stopwatch.StartNew();
        _server = ServerProcess.Start(_o.ServerDll,
            ["--model", _o.Model, "--parallel", $"{_o.Slots}", "--max-queue", $"{_o.MaxQueue}", "--ctx", $"{_o.Context}", "-t", $"{_o.Threads}"],
            TimeSpan.FromSeconds(120));
        try
        {
            _o.Progress?.Invoke($"server pid {_server.Pid} at {_server.EndPoint}");
            await RunPhase(0, _o.WarmUp ?? _o.Requests / _o.Bursts, warmUp: true);
            await Idle("after the warm-up");
            _result.ProbeAnswer = await Probe() ?? "";
            await Task.Delay(_o.Settle);
            _result.ResidentBefore = _server.ResidentBytes();
            int done = 0;
            for (int b = 0; b < _o.Bursts; b++)
            {
                int count = (_o.Requests - done) / (_o.Bursts - b);
                await RunPhase(done, count, warmUp: false);
                done += count;
                await Idle($"after burst {b + 1}");
                string? answer = await Probe();
                if (answer != null && answer != _result.ProbeAnswer)
                    Fail($"the greedy probe changed after burst {b + 1}: '{answer}' (first: '{_result.ProbeAnswer}')");
                // past the server's idle trim (2 s by default): the memory compared is the idle server's
                await Task.Delay(_o.Settle);
                var metrics = await Metrics();
                _result.Bursts.Add(new BurstSample(b + 1, _server.ResidentBytes(), (long)metrics.GetValueOrDefault("dotnet_gc_committed_bytes"),
                    _server.OpenFiles(), _server.Threads(), clock.Elapsed));
                _o.Progress?.Invoke($"burst {b + 1}/{_o.Bursts}: {done} requests, RSS {_result.Bursts[^1].ResidentBytes / 1e6:F1} MB, GC committed {_result.Bursts[^1].CommittedBytes / 1e6:F1} MB, {_result.Bursts[^1].OpenFiles} fds, {_result.Bursts[^1].Threads} threads, {clock.Elapsed.TotalSeconds:F0} s, {_result.Violations.Count} violations");
                if (_server.HasExited) { Fail("the server process died"); break; }
            }
            if (!_server.HasExited) await FinalChecks();
        }
        finally
        {
            _result.ExitCode = _server.Terminate(TimeSpan.FromSeconds(30));
            if (_result.ExitCode != 0) Fail($"the server did not stop cleanly on SIGTERM (exit {(_result.ExitCode?.ToString() ?? "none: killed")})");
            var log = _server.Log;
            for (int i = 0; i < log.Count; i++)
                if (log[i].StartsWith("fail:", StringComparison.Ordinal) || log[i].StartsWith("crit:", StringComparison.Ordinal) || log[i].Contains("Unhandled exception", StringComparison.Ordinal))
                    Fail($"the server logged: {string.Join(" / ", log.Skip(i).Take(3).Select(l => l.Trim()))}");
            _server.Dispose();
            _result.Elapsed = clock.Elapsed;
        }
        return _result;
    }

    /// <summary>Runs <paramref name="count"/> requests over all clients at once (a burst: every client starts together).</summary>
    private async Task RunPhase(int first, int count, bool warmUp)
    {
        int next = 0;
        async Task Client()
        {
            while (true)
            {
                int i = Interlocked.Increment(ref next) - 1;
                if (i >= count) return;
                var r = new Random(unchecked(_o.Seed * 1_000_003 + (warmUp ? -1 - i : first + i)));
                var s = Scenarios.Next(r, _o.Only);
                var c = await Send(s);
                // clients back off after a 429 for a moment, as the OpenAI clients do (not retrying: the next request is another)
                if (c?.Status == 429) await Task.Delay(r.Next(50, 250));
            }
        }
        await Task.WhenAll(Enumerable.Range(0, _o.Clients).Select(_ => Task.Run(Client)));
    }

    private async Task<Checked?> Send(Scenario s)
    {
        using var cts = new CancellationTokenSource(_o.Deadline);
        var started = Stopwatch.GetTimestamp();
        bool counted = s.Endpoint != Endpoint.Other && !s.HttpLayer;
        if (counted) Interlocked.Increment(ref _sent);
        RawResponse r;
        try
        {
            r = await RawHttp.SendAsync(_server.EndPoint, s.Request, cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            Fail($"{s.Kind}: no answer within the deadline of {_o.Deadline.TotalSeconds:F0} s: {Body(s)}");
            return null;
        }
        catch (Exception e) when (e is ProtocolViolation or SocketException or IOException)
        {
            // a body over the limit may meet the server's answer and close while it is still being sent
            if (s.Kind == "body-over-limit" && e is SocketException or IOException) { Tally(s, new Checked("413, connection closed while sending", 0), started, counted); return null; }
            Fail($"{s.Kind}: {e.Message}: {Body(s)}");
            return null;
        }
        Checked c;
        try
        {
            c = ResponseChecker.Check(s, r);
        }
        catch (Exception e) when (e is Violation or KeyNotFoundException or InvalidOperationException or FormatException or JsonException)
        {
            Fail($"{s.Kind}: {e.Message} (request: {Body(s)})");
            // the status was seen all the same: it counts in the accounting against /metrics
            Tally(s, new Checked("violation", r.Status), started, counted, r);
            return null;
        }
        Tally(s, c, started, counted, r);
        return c;
    }

    private void Tally(Scenario s, Checked c, long started, bool counted, RawResponse? r = null)
    {
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        lock (_gate)
        {
            _result.Sent++;
            _result.Outcomes[c.Outcome] = _result.Outcomes.GetValueOrDefault(c.Outcome) + 1;
            _result.Kinds[s.Kind] = _result.Kinds.GetValueOrDefault(s.Kind) + 1;
            if (c.Status == 200 && r is { ClosedByClient: false }) _result.SuccessSeconds.Add(seconds);
            if (c.Status == 200 && s.Stream && r != null) _result.FirstByteSeconds.Add(r.FirstByte.TotalSeconds);
            if (c.Status == 429) _result.RefusedSeconds.Add(seconds);
            if (!counted) return;
            if (c.Status == 0) { _unseen++; return; }
            _seen[c.Status] = _seen.GetValueOrDefault(c.Status) + 1;
            if (c.Status != 200) return;
            _seenChoices200 += s.Choices;
            if (r is { ClosedByClient: true }) _droppedChoices += s.Choices;
            _seenStop += c.ChoicesStop;
            _seenLength += c.ChoicesLength;
            _seenCompletionTokens += c.CompletionTokens;
        }
    }

    private void Fail(string message)
    {
        lock (_gate)
        {
            _result.Violations.Add(message);
            if (_result.Violations.Count <= 20) _o.Progress?.Invoke("VIOLATION " + ResponseChecker.Excerpt(message));
        }
    }

    private static string Body(Scenario s) => ResponseChecker.Excerpt(Encoding.UTF8.GetString(s.Request.Raw ?? s.Request.Body));

    /// <summary>The greedy probe's answer (reasoning and content), or null if it failed (a violation is recorded).</summary>
    private async Task<string?> Probe()
    {
        _result.Probes++;
        var c = await Send(Scenarios.Probe());
        if (c is null) return null;
        if (c.Status != 200) { Fail($"the probe got HTTP {c.Status} on an idle server"); return null; }
        return c.Text;
    }

    private async Task<(int Status, JsonElement Body)> GetJson(string path)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var r = await RawHttp.SendAsync(_server.EndPoint, new RawRequest("GET", path, []), cts.Token);
        return (r.Status, JsonDocument.Parse(r.Body).RootElement.Clone());
    }

    private async Task<Dictionary<string, double>> Metrics()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var m = await RawHttp.SendAsync(_server.EndPoint, new RawRequest("GET", "/metrics", []), cts.Token);
        return ParseMetrics(m.BodyText);
    }

    /// <summary>Waits (bounded) until the server runs and queues nothing; a server that never gets there is a violation.</summary>
    private async Task Idle(string when)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var (status, h) = await GetJson("/health");
            if (status == 200 && h.GetProperty("running").GetInt32() == 0 && h.GetProperty("queued").GetInt32() == 0) return;
            if (deadline.Elapsed > _o.Deadline)
            {
                Fail($"not idle {when}: /health says {h.GetRawText()}");
                return;
            }
            await Task.Delay(50);
        }
    }

    private async Task FinalChecks()
    {
        var (status, h) = await GetJson("/health");
        _result.Health = h.GetRawText();
        if (status != 200 || h.GetProperty("running").GetInt32() != 0 || h.GetProperty("queued").GetInt32() != 0
            || h.GetProperty("slots_idle").GetInt32() != h.GetProperty("slots").GetInt32())
            Fail($"after the run /health says {_result.Health}");

        _result.Metrics = await Metrics();
        CheckAccounting(_result.Metrics);

        if (_result.Bursts.Count >= 2)
        {
            long middle = _result.Bursts[(_result.Bursts.Count - 1) / 2].ResidentBytes, last = _result.Bursts[^1].ResidentBytes;
            if (last > middle * (1 + _o.MaxMemoryGrowth))
                Fail($"resident memory grew from {middle / 1e6:F1} MB after the middle burst to {last / 1e6:F1} MB after the last (more than {_o.MaxMemoryGrowth:P0})");
        }
    }

    /// <summary>The server's counters against what the clients saw (see docs/reliability.md for the reasoning).</summary>
    private void CheckAccounting(Dictionary<string, double> metrics)
    {
        double Http(string code) => metrics.Where(kv => kv.Key.StartsWith("r1sharp_http_requests_total{", StringComparison.Ordinal) && kv.Key.Contains($"code=\"{code}\"", StringComparison.Ordinal)).Sum(kv => kv.Value);
        double Finished(string reason) => metrics.GetValueOrDefault($"r1sharp_requests_finished_total{{finish_reason=\"{reason}\"}}");
        var codes = metrics.Keys.Where(k => k.StartsWith("r1sharp_http_requests_total{", StringComparison.Ordinal))
            .Select(k => Regex.Match(k, "code=\"(\\d+)\"").Groups[1].Value).Distinct().ToList();
        double total = codes.Sum(Http);
        if (total != _sent) Fail($"/metrics counts {total} requests to the API, the clients sent {_sent}");
        foreach (var code in codes.Concat(_seen.Keys.Select(k => k.ToString(CultureInfo.InvariantCulture))).Distinct())
        {
            if (code is "200" or "400" or "429" or "499") continue;
            int seen = _seen.GetValueOrDefault(int.Parse(code));
            if (Http(code) != seen) Fail($"/metrics counts {Http(code)} answers {code}, the clients saw {seen}");
        }
        // a request whose client left before reading anything ends as 200, 429, 499, or 400 (its body cut off by the
        // connection's end, as nginx counts it): those codes hold the unread ones on top of what the clients saw
        double open = Http("200") + Http("400") + Http("429") + Http("499");
        int seenOpen = _seen.GetValueOrDefault(200) + _seen.GetValueOrDefault(400) + _seen.GetValueOrDefault(429) + _unseen;
        if (open != seenOpen) Fail($"/metrics counts {open} answers 200/400/429/499, the clients account for {seenOpen}");
        foreach (int code in new[] { 400, 429 })
            if (Http($"{code}") < _seen.GetValueOrDefault(code) || Http($"{code}") > _seen.GetValueOrDefault(code) + _unseen)
                Fail($"/metrics counts {Http($"{code}")} answers {code}, the clients saw {_seen.GetValueOrDefault(code)} and left {_unseen} unread");

        double finished = Finished("stop") + Finished("length") + Finished("cancelled");
        if (finished < _seenChoices200 || finished > _seenChoices200 + _unseen)
            Fail($"/metrics counts {finished} engine requests finished; the clients saw {_seenChoices200} choices answered and {_unseen} requests unread");
        if (Finished("stop") < _seenStop) Fail($"/metrics counts {Finished("stop")} finished by stop, the clients saw {_seenStop}");
        if (Finished("length") < _seenLength) Fail($"/metrics counts {Finished("length")} finished by length, the clients saw {_seenLength}");
        if (Finished("cancelled") > _droppedChoices + _unseen)
            Fail($"/metrics counts {Finished("cancelled")} cancelled, more than the {_droppedChoices + _unseen} the clients dropped");
        double generated = metrics.GetValueOrDefault("r1sharp_generation_tokens_total");
        if (generated < _seenCompletionTokens) Fail($"/metrics counts {generated} tokens generated, the clients' usage adds to {_seenCompletionTokens}");
    }

    /// <summary>Prometheus text: "name{labels} value" lines (comments skipped).</summary>
    public static Dictionary<string, double> ParseMetrics(string text)
    {
        var values = new Dictionary<string, double>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) values[line[..space]] = v;
        }
        return values;
    }
}
