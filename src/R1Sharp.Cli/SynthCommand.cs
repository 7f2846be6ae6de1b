// synth: writes a random-weight GGUF of a preset shape (tiny models for tests, real shapes for benchmarks).
using System.CommandLine;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Cli;

internal static class SynthCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = "llama or qwen2", Required = true };
        var preset = new Option<string>("--preset") { Description = "tiny, r1-distill-qwen-1.5b, r1-distill-qwen-7b, r1-distill-llama-8b", DefaultValueFactory = _ => "tiny" };
        var type = new Option<string>("--type") { Description = "weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k", DefaultValueFactory = _ => "f32" };
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out", "-o") { Description = "output .gguf path", Required = true };
        var cmd = new Command("synth", "write a random-weight model of a given shape") { arch, preset, type, seed, output };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var spec = Synthesizer.FindPreset(r.GetValue(arch)!, r.GetValue(preset)!);
            if (!GgmlTypeInfo.TryParse(r.GetValue(type)!, out var t))
                throw new ArgumentException($"unknown type '{r.GetValue(type)}'");
            string path = r.GetValue(output)!;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Synthesizer.Write(spec, t, r.GetValue(seed), path);
            Console.Error.WriteLine($"wrote {path}: {spec.Architecture} {spec.Name} {GgmlTypeInfo.Name(t)}, {new FileInfo(path).Length / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s (random weights)");
            return 0;
        }));
        return cmd;
    }
}
