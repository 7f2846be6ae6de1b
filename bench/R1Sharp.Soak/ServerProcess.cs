// `r1sharp serve` as a child process: started on a free port, watched (its log, whether it is alive, its resident
// memory from /proc), and stopped with SIGTERM as an operator would.
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace R1Sharp.Soak;

public sealed partial class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _log = [];

    private ServerProcess(Process process, IPEndPoint endPoint)
    {
        _process = process;
        EndPoint = endPoint;
    }

    public IPEndPoint EndPoint { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>Lines the server wrote on stderr and stdout.</summary>
    public IReadOnlyList<string> Log
    {
        get { lock (_log) return [.. _log]; }
    }

    [GeneratedRegex(@"serving '.*' at http://(?<host>[0-9.]+):(?<port>\d+)/")]
    private static partial Regex ServingLine();

    /// <summary>Starts `dotnet <paramref name="dll"/> serve ARGS --port 0` and waits for the line that gives its address.</summary>
    public static ServerProcess Start(string dll, IEnumerable<string> serveArgs, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("serve");
        foreach (var a in serveArgs) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--port");
        psi.ArgumentList.Add("0");
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        var address = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new List<string>();
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (log) log.Add(line);
            if (ServingLine().Match(line) is { Success: true } m)
                address.TrySetResult(new IPEndPoint(IPAddress.Parse(m.Groups["host"].Value), int.Parse(m.Groups["port"].Value)));
        }
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => address.TrySetException(new InvalidOperationException($"the server exited ({process.ExitCode}) before serving"));
        try
        {
            if (!address.Task.Wait(timeout)) throw new TimeoutException($"the server did not start within {timeout.TotalSeconds:F0} s");
        }
        catch (Exception e)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            string lines;
            lock (log) lines = string.Join("\n", log);
            process.Dispose();
            throw new InvalidOperationException($"{(e as AggregateException)?.InnerException?.Message ?? e.Message}\n{lines}");
        }
        var server = new ServerProcess(process, address.Task.Result);
        lock (log) server._log.AddRange(log);
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (server._log) server._log.Add(e.Data); };
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (server._log) server._log.Add(e.Data); };
        return server;
    }

    /// <summary>VmRSS of the server process, in bytes.</summary>
    public long ResidentBytes() => Status("VmRSS:") * 1024;

    /// <summary>Threads of the server process.</summary>
    public int Threads() => (int)Status("Threads:");

    private long Status(string key)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0]);
        throw new InvalidOperationException($"{key} not found in /proc/{Pid}/status");
    }

    /// <summary>File descriptors the server process holds.</summary>
    public int OpenFiles() => Directory.GetFiles($"/proc/{Pid}/fd").Length;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    /// <summary>Sends SIGTERM and waits for the exit; returns the exit code, or null if it had to be killed.</summary>
    public int? Terminate(TimeSpan timeout)
    {
        if (_process.HasExited) return _process.ExitCode;
        kill(_process.Id, 15);
        if (_process.WaitForExit(timeout))
        {
            _process.WaitForExit(); // drains the output readers
            return _process.ExitCode;
        }
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        return null;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
