// merge: join the parts of a split model into one GGUF, as llama.cpp's gguf-split --merge does.
using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Formats;

namespace R1Sharp.Cli;

internal static class MergeCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("FIRST_PART") { Description = "a part of the split model (the others are found beside it)" };
        var output = new Argument<string>("OUT") { Description = "output .gguf (must not exist)" };
        var cmd = new Command("merge", "merge the parts of a split GGUF into one file") { input, output };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string outPath = r.GetValue(output)!;
            if (File.Exists(outPath)) throw new ArgumentException($"{outPath} exists; merge writes a new file");
            var sw = Stopwatch.StartNew();
            using var file = GgufFile.Open(r.GetValue(input)!);
            var w = GgufSplit.MergeWriter(file);
            CliProgress.Status($"merging {file.Paths.Count} parts", () => { w.Write(outPath); return 0; });
            Console.Error.WriteLine($"merged {file.Paths.Count} parts, {file.Tensors.Count} tensors, into {outPath}: " +
                                    $"{CliProgress.FormatBytes(new FileInfo(outPath).Length)} in {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        }));
        return cmd;
    }
}
