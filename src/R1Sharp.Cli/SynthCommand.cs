// synth: writes a random-weight GGUF of a preset shape (tiny models for tests, real shapes for benchmarks).
using System.CommandLine;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Cli;

internal static class SynthCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = "llama, qwen2 or deepseek2", Required = true };
        var preset = new Option<string>("--preset") { Description = string.Join(", ", Synthesizer.Presets.Select(p => $"{p.Architecture}/{p.Name}").Distinct()), DefaultValueFactory = _ => "tiny" };
        var type = new Option<string>("--type") { Description = $"weight type or mix: {string.Join(", ", WeightMix.Names)}", DefaultValueFactory = _ => "f32" };
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out", "-o") { Description = "output .gguf path (a folder with --format hf)", Required = true };
        var format = new Option<string>("--format") { Description = "gguf, or hf: a Hugging Face checkpoint folder (config.json, safetensors in BF16) for `convert`", DefaultValueFactory = _ => "gguf" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "hf: a folder whose tokenizer.json and tokenizer_config.json are copied into the checkpoint" };
        var fp8 = new Option<bool>("--fp8") { Description = "hf, deepseek2: linear weights in FP8 with 128x128 block scales, as DeepSeek publishes V3/R1" };
        var shard = new Option<long>("--shard-mb") { Description = "hf: split the safetensors into shards of at most this many MB (with model.safetensors.index.json)" };
        var layers = new Option<int?>("--layers") { Description = "transformer blocks instead of the preset's (deepseek2 keeps its leading dense blocks)" };
        var cmd = new Command("synth", "write a random-weight model of a given shape") { arch, preset, type, seed, layers, output, format, tokenizer, fp8, shard };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var spec = Synthesizer.WithLayers(Synthesizer.FindPreset(r.GetValue(arch)!, r.GetValue(preset)!), r.GetValue(layers));
            var mix = WeightMix.Parse(r.GetValue(type)!);
            string path = r.GetValue(output)!;
            if (r.GetValue(format) == "hf") return WriteHf(spec, path, r.GetValue(tokenizer), r.GetValue(fp8), r.GetValue(shard), r.GetValue(seed));
            if (r.GetValue(format) != "gguf") throw new ArgumentException($"unknown format '{r.GetValue(format)}' (gguf, hf)");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Synthesizer.Write(spec, mix, r.GetValue(seed), path);
            Console.Error.WriteLine($"wrote {path}: {spec.Architecture} {spec.Name} {mix.Name}, {new FileInfo(path).Length / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s (random weights)");
            return 0;
        }));
        return cmd;
    }

    private static int WriteHf(SynthSpec spec, string dir, string? tokenizer, bool fp8, long shardMb, ulong seed)
    {
        if (tokenizer is null) throw new ArgumentException("--format hf needs --tokenizer FOLDER (with tokenizer.json and tokenizer_config.json)");
        string tokJson = Path.Combine(tokenizer, "tokenizer.json");
        if (!File.Exists(tokJson)) throw new ArgumentException($"{tokJson}: missing");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int vocab = Conversion.HfSynthesizer.TokenizerVocabSize(tokJson);
        Conversion.HfSynthesizer.Write(spec, dir, new Conversion.HfSynthOptions { Seed = seed, Fp8 = fp8, MaxShardBytes = shardMb << 20, VocabSize = vocab });
        foreach (string f in new[] { "tokenizer.json", "tokenizer_config.json" })
            if (File.Exists(Path.Combine(tokenizer, f))) File.Copy(Path.Combine(tokenizer, f), Path.Combine(dir, f), overwrite: true);
        long bytes = Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length);
        Console.Error.WriteLine($"wrote {dir}: {spec.Architecture} {spec.Name} {(fp8 ? "FP8" : "BF16")} checkpoint, {bytes / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s (random weights)");
        return 0;
    }
}
