// convert: a Hugging Face checkpoint folder (config.json, tokenizer files, safetensors in BF16/F16/F32 or DeepSeek's
// FP8) to GGUF in one pass, with a progress bar in bytes per second on a terminal and one summary line, on stderr.
using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Conversion;
using R1Sharp.Models;

namespace R1Sharp.Cli;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("HF_DIR") { Description = "Hugging Face checkpoint folder" };
        var output = new Argument<string>("OUT") { Description = "output .gguf" };
        var type = new Option<string>("--type")
        {
            Description = "weight type: " + string.Join(", ", QuantizeTarget.All.Select(t => t.Name)) + " (default bf16)",
            DefaultValueFactory = _ => "bf16",
        };
        var noMtp = new Option<bool>("--no-mtp") { Description = "deepseek2: leave out the multi-token-prediction layer (as llama.cpp's converter does)" };
        var cmd = new Command("convert", "convert a Hugging Face checkpoint (safetensors) to GGUF") { input, output, type, noMtp };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var target = QuantizeTarget.Parse(r.GetValue(type)!);
            string inDir = r.GetValue(input)!, outPath = r.GetValue(output)!;
            if (Directory.Exists(outPath)) throw new ArgumentException($"{outPath} is a folder; OUT is the .gguf file to write");
            var sw = Stopwatch.StartNew();
            ConvertResult? result = null;
            CliProgress.BytesBar($"converting to {target.Name}",
                progress => result = HfConverter.Convert(inDir, outPath, new ConvertOptions(target, Mtp: !r.GetValue(noMtp)), progress));
            if (result!.Warning is string w) Console.Error.WriteLine($"warning: {w}");
            if (result.MtpLayers > 0)
                Console.Error.WriteLine($"note: kept {result.MtpLayers} multi-token-prediction layer(s) as blk.N.nextn.* (for --spec mtp); llama.cpp does not load them, --no-mtp leaves them out");
            Console.Error.WriteLine($"wrote {outPath}: {result.Architecture}, {result.Tensors} tensors, {target.Name}, " +
                                    $"{result.InputBytes / 1e6:F1} MB -> {result.OutputBytes / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s " +
                                    $"({result.InputBytes / 1e6 / Math.Max(sw.Elapsed.TotalSeconds, 1e-3):F0} MB/s); tokenizer.ggml.pre = {result.Pre}");
            return 0;
        }));
        return cmd;
    }
}
