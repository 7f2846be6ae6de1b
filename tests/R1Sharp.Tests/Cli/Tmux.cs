// A command in a detached tmux session on its own server socket: type into it and read its screen, as a person at a
// terminal would. .ci/run installs tmux; without it the tests fail with a message saying so.
using System.Diagnostics;

namespace R1Sharp.Tests.Cli;

public sealed class Tmux : IDisposable
{
    private readonly string _socket = "r1sharp-test-" + Guid.NewGuid().ToString("N")[..12];

    private Tmux() { }

    /// <summary>Starts <paramref name="argv"/> in a width × height terminal; when it exits the pane shows "[exited N]".</summary>
    public static Tmux Start(IEnumerable<string> argv, int width = 110, int height = 40)
    {
        if (!File.Exists("/usr/bin/tmux") && !File.Exists("/usr/local/bin/tmux"))
            throw new InvalidOperationException("tmux is needed for the terminal chat tests and was not found: install it " +
                                                "(apt-get install -y tmux; .ci/run does this)");
        var t = new Tmux();
        // the shell outlives a Ctrl+C meant for the command (a trap, unlike an ignored signal, is not inherited)
        string command = "trap : INT; " + string.Join(' ', argv.Select(Quote)) + "; echo \"[exited $?]\"; sleep 120";
        t.Run("new-session", "-d", "-x", width.ToString(), "-y", height.ToString(), "sh", "-c", command);
        return t;
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    private string Run(params string[] args)
    {
        var psi = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-L");
        psi.ArgumentList.Add(_socket);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["TERM"] = "xterm-256color";
        psi.Environment.Remove("NO_COLOR");
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"tmux {string.Join(' ', args)} failed: {stderr.Trim()}");
        return stdout;
    }

    /// <summary>Types literal text (no Enter).</summary>
    public void Type(string text) => Run("send-keys", "-t", "0", "-l", text);

    /// <summary>Presses keys by tmux name: "Enter", "C-c", "C-d".</summary>
    public void Press(string key) => Run("send-keys", "-t", "0", key);

    public void Line(string text)
    {
        Type(text);
        Press("Enter");
    }

    /// <summary>The visible screen as text, plus the scrollback.</summary>
    public string Screen() => Run("capture-pane", "-p", "-t", "0", "-S", "-200");

    /// <summary>Waits (bounded) until the screen satisfies <paramref name="condition"/>; returns that screen.</summary>
    public string WaitFor(Func<string, bool> condition, string what, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            string screen = Screen();
            if (condition(screen)) return screen;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}; the screen:\n{screen}");
            Thread.Sleep(100);
        }
    }

    public string WaitFor(string text, int timeoutMs = 30_000) => WaitFor(s => s.Contains(text, StringComparison.Ordinal), $"'{text}' shows", timeoutMs);

    public static int Count(string screen, string text) => screen.Split(text).Length - 1;

    public void Dispose()
    {
        try { Run("kill-server"); } catch (InvalidOperationException) { }
    }
}
