// split: cut a GGUF into parts llama.cpp's gguf-split writes (and llama.cpp loads from the first part): the plan on
// stdout in gguf-split's words, the parts written unless --dry-run.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using R1Sharp.Formats;

namespace R1Sharp.Cli;

internal static class SplitCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("IN") { Description = "input .gguf (a single file, or any part of a split model)" };
        var prefix = new Argument<string>("OUT_PREFIX") { Description = "parts are written as OUT_PREFIX-00001-of-0000N.gguf" };
        var maxSize = new Option<string>("--split-max-size") { Description = "most tensor bytes per part, N followed by M (10^6) or G (10^9), e.g. 2G" };
        var maxTensors = new Option<int?>("--split-max-tensors") { Description = "most tensors per part (default 128, as gguf-split)" };
        var noTensorFirst = new Option<bool>("--no-tensor-first-split") { Description = "the first part holds the metadata alone" };
        var dryRun = new Option<bool>("--dry-run") { Description = "print the plan, write nothing" };
        var cmd = new Command("split", "split a GGUF into parts as llama.cpp's gguf-split does") { input, prefix, maxSize, maxTensors, noTensorFirst, dryRun };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string? size = r.GetValue(maxSize);
            int? tensors = r.GetValue(maxTensors);
            if (size is not null && tensors is not null) throw new ArgumentException("give --split-max-size or --split-max-tensors, not both");
            if (tensors is < 1) throw new ArgumentException($"--split-max-tensors: {tensors} is not a positive count");
            var options = new GgufSplit.Options
            {
                MaxBytes = size is null ? null : ParseSize(size),
                MaxTensors = tensors ?? 128,
                NoTensorFirstSplit = r.GetValue(noTensorFirst),
            };
            string outPrefix = r.GetValue(prefix)!;
            using var file = GgufFile.Open(r.GetValue(input)!);
            var plan = GgufSplit.Plan(file, options);
            Console.WriteLine($"n_split: {plan.Count}");
            for (int i = 0; i < plan.Count; i++)
            {
                long bytes = GgufSplit.PartWriter(file, plan[i], i, plan.Count).HeaderBytes + plan[i].Sum(t => t.ByteSize);
                Console.WriteLine($"split {i + 1:D5}: n_tensors = {plan[i].Count}, total_size = {bytes / 1000 / 1000}M ({Path.GetFileName(GgufFile.PartPath(outPrefix, i, plan.Count))})");
            }
            if (r.GetValue(dryRun)) return 0;
            var sw = Stopwatch.StartNew();
            IReadOnlyList<string> paths = [];
            CliProgress.Bar("splitting", "tensors", progress => paths = GgufSplit.Split(file, outPrefix, options, progress));
            Console.Error.WriteLine($"wrote {paths.Count} parts, {file.Tensors.Count} tensors, {CliProgress.FormatBytes(paths.Sum(p => new FileInfo(p).Length))} " +
                                    $"in {sw.Elapsed.TotalSeconds:F1} s: {paths[0]} ...");
            return 0;
        }));
        return cmd;
    }

    /// <summary>gguf-split's sizes: a positive number and M (10^6 bytes) or G (10^9 bytes).</summary>
    internal static long ParseSize(string text)
    {
        long unit = text.EndsWith('M') ? 1000L * 1000 : text.EndsWith('G') ? 1000L * 1000 * 1000 : 0;
        if (unit == 0 || !double.TryParse(text[..^1], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double n) || n <= 0 || n * unit > long.MaxValue)
            throw new ArgumentException($"--split-max-size: '{text}' is not a size; give a positive number followed by M or G, e.g. 500M or 2G");
        return (long)(n * unit);
    }
}
