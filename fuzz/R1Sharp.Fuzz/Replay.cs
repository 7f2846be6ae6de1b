// Runs a target over saved inputs without AFL: the corpus and crash tests, and triage of what afl-fuzz found. An
// input that throws (anything the target does not catch) or runs past the limit is reported with its file.
namespace R1Sharp.Fuzz;

public static class Replay
{
    /// <summary>An input and what it did: null when it passed, else the exception or "hang".</summary>
    public sealed record Outcome(string File, string? Failure);

    public static IEnumerable<string> Files(IEnumerable<string> paths) =>
        paths.SelectMany(p => Directory.Exists(p)
            ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith('.') && Path.GetFileName(f) != "README.txt").Order()
            : (IEnumerable<string>)[p]);

    public static Outcome RunOne(FuzzTarget target, string file, TimeSpan limit)
    {
        byte[] data = File.ReadAllBytes(file);
        Exception? error = null;
        // a thread of its own with a deep stack, so that a hang can be abandoned and deep recursion is seen as such
        var thread = new Thread(() =>
        {
            try { target.Run(data); }
            catch (Exception e) { error = e; }
        }, 64 << 20) { IsBackground = true };
        thread.Start();
        if (!thread.Join(limit)) return new Outcome(file, $"hang: still running after {limit.TotalSeconds:F0} s");
        return new Outcome(file, error is null ? null : $"{error.GetType().Name}: {error.Message}\n{error.StackTrace}");
    }

    /// <summary>Replays every file under <paramref name="paths"/>; returns how many failed.</summary>
    public static int Run(FuzzTarget target, IEnumerable<string> paths, TimeSpan limit, TextWriter log)
    {
        int failed = 0, total = 0;
        foreach (var file in Files(paths))
        {
            total++;
            var o = RunOne(target, file, limit);
            if (o.Failure is null) continue;
            failed++;
            log.WriteLine($"CRASH {target.Name} {file}: {o.Failure}");
        }
        log.WriteLine($"{target.Name}: {total} inputs, {failed} failed");
        return failed;
    }
}
