// imatrix: llama-imatrix's importance matrix (per weight matrix the mean square of each input column, experts counted
// per expert) over a text file, written in llama.cpp's imatrix GGUF format or its legacy .dat; quantize --imatrix reads
// either.
using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Engine;

namespace R1Sharp.Cli;

internal static class ImatrixCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var file = new Option<string>("--file", "-f") { Description = "UTF-8 text to evaluate", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "the importance matrix to write (.gguf)", Required = true };
        var chunks = new Option<int>("--chunks") { Description = "evaluate at most N chunks (default: all the text holds)", DefaultValueFactory = _ => 0 };
        var ctx = new Option<int>("--ctx", "-c") { Description = "tokens per chunk (llama-imatrix's -c)", DefaultValueFactory = _ => 512 };
        var format = new Option<string>("--output-format") { Description = "gguf (default) or dat (the legacy format)", DefaultValueFactory = _ => "gguf" };
        var threads = CliCommon.ThreadsOption();
        var cmd = new Command("imatrix", "compute an importance matrix for quantize --imatrix") { model, file, output, chunks, ctx, format, threads };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string fmt = r.GetValue(format)!;
            if (fmt is not ("gguf" or "dat")) throw new ArgumentException($"--output-format: '{fmt}' is not gguf or dat");
            string textPath = r.GetValue(file)!, outPath = r.GetValue(output)!;
            string text = File.ReadAllText(textPath);
            using var lm = CliProgress.LoadModel(r.GetValue(model)!, r.GetValue(threads), mmap: true);
            var sw = Stopwatch.StartNew();
            var last = TimeSpan.Zero;
            var result = ImatrixRun.Compute(lm, text, textPath, r.GetValue(ctx), r.GetValue(chunks), (done, total, ppl) =>
            {
                if (done < total && sw.Elapsed - last < TimeSpan.FromSeconds(2)) return;
                last = sw.Elapsed;
                Console.Error.WriteLine($"[{done}/{total}] perplexity {ppl:F4} ({sw.Elapsed.TotalSeconds:F1} s)");
            });
            if (fmt == "dat") result.Matrix.SaveLegacy(outPath);
            else result.Matrix.Save(outPath);
            Console.Error.WriteLine($"wrote {outPath}: {result.Matrix.Entries.Count} matrices over {result.Chunks} chunks of {r.GetValue(ctx)} tokens, " +
                $"perplexity {result.Perplexity:F4}, in {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        }));
        return cmd;
    }
}
