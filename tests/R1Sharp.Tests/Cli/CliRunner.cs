using System.Diagnostics;

namespace R1Sharp.Tests.Cli;

/// <summary>Runs the built r1sharp.dll in a child process, as a user would.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => RunWithInput("", args);

    /// <summary>Runs with <paramref name="input"/> on stdin, then stdin closed.</summary>
    public static Result RunWithInput(string input, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("R1SHARP_DEBUG");
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(input);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"r1sharp {string.Join(' ', args)} did not finish in 120 s");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
