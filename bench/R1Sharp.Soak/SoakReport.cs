// The soak run's summary in Markdown: requests by outcome and by kind, latency percentiles, memory by burst, the
// server's counters, and every violation (none on a pass).
using System.Text;

namespace R1Sharp.Soak;

public static class SoakReport
{
    public static string Format(SoakResult r)
    {
        var o = r.Options;
        var sb = new StringBuilder();
        sb.AppendLine($"soak: {r.Sent} requests (a warm-up of {o.WarmUp ?? o.Requests / o.Bursts} and probes included) in {r.Elapsed.TotalSeconds:F0} s, {o.Clients} clients, {o.Slots} slots, queue {o.MaxQueue}, ctx {o.Context}, " +
                      $"{o.Bursts} bursts, {o.Threads} threads, seed {o.Seed}, model {Path.GetFileName(o.Model)}: " +
                      (r.Passed ? "PASS" : $"FAIL ({r.Violations.Count} violations)"));
        sb.AppendLine();
        sb.AppendLine("| outcome | requests |\n|---|---|");
        foreach (var (k, v) in r.Outcomes.OrderByDescending(kv => kv.Value)) sb.AppendLine($"| {k} | {v} |");
        sb.AppendLine();
        sb.AppendLine("| kind | requests |\n|---|---|");
        foreach (var (k, v) in r.Kinds.OrderByDescending(kv => kv.Value)) sb.AppendLine($"| {k} | {v} |");
        sb.AppendLine();
        sb.AppendLine("| latency (s) | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|");
        Row(sb, "200, whole answer", r.SuccessSeconds);
        Row(sb, "200 streams, first byte", r.FirstByteSeconds);
        Row(sb, "429", r.RefusedSeconds);
        sb.AppendLine();
        sb.AppendLine($"resident memory: {r.ResidentBefore / 1e6:F1} MB after the warm-up; after each burst " +
                      string.Join(", ", r.Bursts.Select(b => $"{b.ResidentBytes / 1e6:F1}")) + " MB" +
                      (r.Bursts.Count >= 2 ? $" (last vs middle: {Growth(r):+0.0%;-0.0%})" : ""));
        sb.AppendLine("GC committed after each burst: " + string.Join(", ", r.Bursts.Select(b => $"{b.CommittedBytes / 1e6:F1}")) + " MB; open file descriptors: "
                      + string.Join(", ", r.Bursts.Select(b => b.OpenFiles)) + "; threads: " + string.Join(", ", r.Bursts.Select(b => b.Threads)));
        sb.AppendLine($"greedy probe: asked {r.Probes} times, always '{r.ProbeAnswer.Replace("\n", "\\n").Replace("\u0001", " | ")}'" +
                      (r.Violations.Any(v => v.Contains("probe changed", StringComparison.Ordinal)) ? " (CHANGED: see violations)" : ""));
        sb.AppendLine($"/health after the run: {r.Health}; server exit code on SIGTERM: {r.ExitCode?.ToString() ?? "killed"}");
        var counters = r.Metrics.Where(kv => kv.Key.StartsWith("r1sharp_requests_finished_total", StringComparison.Ordinal)
                                             || kv.Key.StartsWith("r1sharp_http_requests_total", StringComparison.Ordinal)
                                             || kv.Key == "r1sharp_generation_tokens_total").OrderBy(kv => kv.Key);
        sb.AppendLine("/metrics: " + string.Join(", ", counters.Select(kv => $"{kv.Key} {kv.Value}")));
        if (r.Violations.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("violations:");
            foreach (var v in r.Violations.Take(50)) sb.AppendLine("- " + ResponseChecker.Excerpt(v));
        }
        return sb.ToString();
    }

    public static double Growth(SoakResult r)
    {
        long middle = r.Bursts[(r.Bursts.Count - 1) / 2].ResidentBytes;
        return (double)r.Bursts[^1].ResidentBytes / middle - 1;
    }

    private static void Row(StringBuilder sb, string name, List<double> xs)
    {
        if (xs.Count == 0) { sb.AppendLine($"| {name} | 0 | | | | |"); return; }
        var s = xs.OrderBy(x => x).ToArray();
        double P(double q) => s[Math.Min(s.Length - 1, (int)Math.Ceiling(q * s.Length) - 1)];
        sb.AppendLine($"| {name} | {s.Length} | {P(0.5):F3} | {P(0.9):F3} | {P(0.99):F3} | {s[^1]:F3} |");
    }
}
