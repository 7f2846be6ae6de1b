// Headless Chromium driven over the DevTools protocol (a WebSocket of JSON commands), with nothing but the BCL:
// launch with a fresh profile on a free debugging port, attach to its page, evaluate script, type, screenshot.
// Debian's `chromium` package provides the browser (.ci/run installs it).
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Server.Tests.Browser;

public sealed class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _ws = new();
    private readonly Dictionary<int, TaskCompletionSource<JsonNode?>> _pending = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _reader = Task.CompletedTask;
    private int _nextId;

    /// <summary>Script errors and console.error messages the page produced.</summary>
    public List<string> PageErrors { get; } = new();

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static string? FindExecutable()
    {
        foreach (string? p in new[] { Environment.GetEnvironmentVariable("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" })
            if (!string.IsNullOrEmpty(p) && File.Exists(p)) return p;
        return null;
    }

    public static async Task<HeadlessChromium> LaunchAsync(int width = 1000, int height = 760)
    {
        string exe = FindExecutable() ?? throw new InvalidOperationException(
            "headless Chromium is needed for the chat page tests and was not found: install Debian's `chromium` package " +
            "(apt-get install -y chromium; .ci/run does this) or set CHROMIUM_PATH");
        string profile = Directory.CreateTempSubdirectory("r1sharp-chromium-").FullName;
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
            $"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            $"--window-size={width},{height}", "about:blank",
        }) psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, _) => { };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var browser = new HeadlessChromium(process, profile);
        try
        {
            await browser.AttachAsync();
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    private async Task AttachAsync()
    {
        // Chromium writes the port it picked to DevToolsActivePort in the profile
        string portFile = Path.Combine(_profile, "DevToolsActivePort");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        int port = 0;
        while (port == 0)
        {
            if (_process.HasExited) throw new InvalidOperationException($"chromium exited at start with code {_process.ExitCode}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException("chromium did not open its debugging port in 30 s");
            if (File.Exists(portFile) && File.ReadAllLines(portFile) is [var first, ..] && int.TryParse(first, out int p)) port = p;
            else await Task.Delay(100);
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string? wsUrl = null;
        while (wsUrl is null)
        {
            var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
            wsUrl = targets.FirstOrDefault(t => (string?)t!["type"] == "page")?["webSocketDebuggerUrl"]?.GetValue<string>();
            if (wsUrl is null)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException("chromium has no page target");
                await Task.Delay(100);
            }
        }
        await _ws.ConnectAsync(new Uri(wsUrl), CancellationToken.None);
        _reader = Task.Run(ReadLoop);
        await SendAsync("Runtime.enable");
        await SendAsync("Page.enable");
    }

    private async Task ReadLoop()
    {
        var buffer = new byte[1 << 16];
        var message = new MemoryStream();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var r = await _ws.ReceiveAsync(buffer, _stop.Token);
                if (r.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage) continue;
                var node = JsonNode.Parse(message.ToArray())!;
                message.SetLength(0);
                if (node["id"] is { } idNode)
                {
                    TaskCompletionSource<JsonNode?>? tcs;
                    lock (_pending) _pending.Remove(idNode.GetValue<int>(), out tcs);
                    if (node["error"] is { } err) tcs?.TrySetException(new InvalidOperationException($"CDP error: {err.ToJsonString()}"));
                    else tcs?.TrySetResult(node["result"]);
                }
                else if ((string?)node["method"] == "Runtime.exceptionThrown")
                {
                    lock (PageErrors) PageErrors.Add(node["params"]!["exceptionDetails"]!.ToJsonString());
                }
                else if ((string?)node["method"] == "Runtime.consoleAPICalled" && (string?)node["params"]!["type"] == "error")
                {
                    lock (PageErrors) PageErrors.Add(node["params"]!["args"]!.ToJsonString());
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
        }
        lock (_pending)
            foreach (var tcs in _pending.Values) tcs.TrySetException(new InvalidOperationException("the DevTools connection closed"));
    }

    public async Task<JsonNode?> SendAsync(string method, JsonObject? parameters = null, int timeoutMs = 30_000)
    {
        int id = Interlocked.Increment(ref _nextId);
        var tcs = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending) _pending[id] = tcs;
        var msg = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        await _ws.SendAsync(Encoding.UTF8.GetBytes(msg.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        return await tcs.Task.WaitAsync(TimeSpan.FromMilliseconds(timeoutMs));
    }

    /// <summary>Evaluates a JavaScript expression in the page (awaiting a promise) and returns its value as JSON.</summary>
    public async Task<JsonNode?> EvalAsync(string expression)
    {
        var r = await SendAsync("Runtime.evaluate", new JsonObject
        {
            ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true,
        });
        if (r?["exceptionDetails"] is { } ex) throw new InvalidOperationException($"script failed: {ex.ToJsonString()}");
        return r?["result"]?["value"];
    }

    /// <summary>Polls <paramref name="expression"/> until it is true (bounded).</summary>
    public async Task WaitForAsync(string expression, string what, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!((await EvalAsync(expression))?.GetValueKind() == JsonValueKind.True))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }

    public async Task NavigateAsync(string url)
    {
        await SendAsync("Page.navigate", new JsonObject { ["url"] = url });
        await WaitForAsync($"location.href === {JsonSerializer.Serialize(url)} && document.readyState === 'complete'", $"{url} loaded");
    }

    /// <summary>Types text into the focused element as a keyboard would, then presses Enter.</summary>
    public async Task TypeAsync(string text, bool enter)
    {
        await SendAsync("Input.insertText", new JsonObject { ["text"] = text });
        if (!enter) return;
        foreach (var type in new[] { "keyDown", "keyUp" })
            await SendAsync("Input.dispatchKeyEvent", new JsonObject
            {
                ["type"] = type, ["key"] = "Enter", ["code"] = "Enter", ["windowsVirtualKeyCode"] = 13, ["nativeVirtualKeyCode"] = 13,
            });
    }

    public async Task ScreenshotAsync(string path)
    {
        var r = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png" });
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, Convert.FromBase64String(r!["data"]!.GetValue<string>()));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { _ws.Abort(); } catch (WebSocketException) { }
        try { await _reader.WaitAsync(TimeSpan.FromSeconds(5)); } catch (TimeoutException) { }
        _ws.Dispose();
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(_profile, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
