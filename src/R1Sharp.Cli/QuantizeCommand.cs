// quantize: requantize a GGUF to another weight type or llama.cpp mix (q4_k_m, q5_k_m), with a progress bar on a
// terminal (plain status lines otherwise) and one summary line at the end, all on stderr.
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
        var cmd = new Command("quantize", "requantize a GGUF model") { input, output, type };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var target = QuantizeTarget.Parse(r.GetValue(type)!);
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            if (Path.GetFullPath(inPath) == Path.GetFullPath(outPath)) throw new ArgumentException("IN and OUT must be different files");
            var sw = Stopwatch.StartNew();
            CliProgress.Bar($"quantizing to {target.Name}", "tensors", progress => ModelQuantizer.Quantize(inPath, outPath, target, progress));
            Console.Error.WriteLine($"wrote {outPath}: {target.Name}, {new FileInfo(inPath).Length / 1e6:F1} MB -> {new FileInfo(outPath).Length / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        }));
        return cmd;
    }
}
