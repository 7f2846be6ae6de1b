// Runs a helper program (npm, node) to completion with a deadline, capturing its output.
using System.Diagnostics;

namespace R1Sharp.TestSupport;

public static class ProcessRunner
{
    /// <summary>Runs <paramref name="exe"/> in <paramref name="cwd"/>; returns its exit code, stdout and stderr.</summary>
    public static (int Code, string Stdout, string Stderr) Run(string exe, IEnumerable<string> args, string cwd, TimeSpan timeout, string? needs = null)
    {
        var psi = new ProcessStartInfo(exe) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new InvalidOperationException($"cannot start '{exe}'{(needs is null ? "" : $" ({needs})")}: {e.Message}", e);
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{exe} {string.Join(' ', psi.ArgumentList)}' in {cwd} ran past {timeout}{(needs is null ? "" : $" ({needs})")}.");
            }
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
    }

    /// <summary>As <see cref="Run"/>, throwing with the program's output when it exits non-zero.</summary>
    public static string RunChecked(string exe, IEnumerable<string> args, string cwd, TimeSpan timeout, string? needs = null)
    {
        var (code, stdout, stderr) = Run(exe, args, cwd, timeout, needs);
        if (code != 0)
            throw new InvalidOperationException(
                $"'{exe}' in {cwd} failed (exit {code}){(needs is null ? "" : $"; {needs}")}\n{stderr}\n{stdout}");
        return stdout;
    }
}
