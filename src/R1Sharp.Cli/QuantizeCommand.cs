// quantize: requantize a GGUF to another weight type or llama.cpp mix (q4_k_m, iq2_m, ...), optionally with an
// importance matrix, with a progress bar on a terminal (plain status lines otherwise) and one summary line at the end,
// all on stderr.
using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Models;

namespace R1Sharp.Cli;

internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("IN") { Description = "input .gguf" };
        var output = new Argument<string>("OUT") { Description = "output .gguf" };
        var type = new Option<string>("--type") { Description = string.Join(", ", QuantizeTarget.All.Select(t => t.Name)), Required = true };
        var imatrix = new Option<string?>("--imatrix") { Description = "importance matrix (llama.cpp's GGUF imatrix or legacy .dat; `imatrix` writes one); required by iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_xs" };
        var pure = new Option<bool>("--pure") { Description = "the type for every quantizable tensor, none of the mix's promotions (llama-quantize --pure)" };
        var cmd = new Command("quantize", "requantize a GGUF model") { input, output, type, imatrix, pure };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var target = QuantizeTarget.Parse(r.GetValue(type)!);
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            if (Path.GetFullPath(inPath) == Path.GetFullPath(outPath)) throw new ArgumentException("IN and OUT must be different files");
            string? imatrixPath = r.GetValue(imatrix);
            var options = new QuantizeOptions
            {
                Imatrix = imatrixPath is null ? null : ImportanceMatrix.Load(imatrixPath),
                ImatrixPath = imatrixPath,
                Pure = r.GetValue(pure),
            };
            var sw = Stopwatch.StartNew();
            CliProgress.Bar($"quantizing to {target.Name}", "tensors", progress => ModelQuantizer.Quantize(inPath, outPath, target, options, progress));
            Console.Error.WriteLine($"wrote {outPath}: {target.Name}, {new FileInfo(inPath).Length / 1e6:F1} MB -> {new FileInfo(outPath).Length / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        }));
        return cmd;
    }
}
