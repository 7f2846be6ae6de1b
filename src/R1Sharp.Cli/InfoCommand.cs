// info: what a GGUF (or a synth preset, without writing it) holds and what it takes to run.
using System.CommandLine;
using System.Text.Json;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Cli;

internal static class InfoCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption(required: false);
        var arch = new Option<string>("--arch") { Description = "with --preset: describe a synth preset instead of a file" };
        var preset = new Option<string>("--preset") { Description = "a synth preset name, e.g. deepseek-r1" };
        var type = new Option<string>("--type") { Description = "weight type or mix assumed for a preset", DefaultValueFactory = _ => "q8_0" };
        var layers = new Option<int?>("--layers") { Description = "with --preset: transformer blocks instead of the preset's" };
        var ctx = new Option<int>("--ctx", "-c") { Description = "context size for the memory estimate (default: the model's)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var cmd = new Command("info", "describe a model: parameters, bytes by type, KV cache, memory needed") { model, arch, preset, type, layers, ctx, json };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            ModelInfo info;
            string? path = r.GetValue(model);
            int files = 0;
            if (path != null)
            {
                using var file = GgufFile.Open(path);
                info = ModelInfo.From(file);
                files = file.Paths.Count;
            }
            else if (r.GetValue(arch) is { } a && r.GetValue(preset) is { } p)
            {
                var mix = WeightMix.Parse(r.GetValue(type)!);
                var spec = Synthesizer.WithLayers(Synthesizer.FindPreset(a, p), r.GetValue(layers));
                var vocab = Synthesizer.BuildVocab(spec);
                var md = Synthesizer.Metadata(spec, mix, vocab).ToDictionary(kv => kv.Key, kv => kv.Value);
                var tensors = Synthesizer.Typed(Synthesizer.Plan(spec, vocab.Tokens.Length), mix, spec)
                    .Select(x => new TensorEntry(x.Tensor.Name, x.Tensor.Shape, x.Type));
                info = ModelInfo.From(md, tensors);
            }
            else throw new ArgumentException("give --model PATH, or --arch and --preset");

            int context = r.GetValue(ctx) is int c && c > 0 ? c : info.ContextLength;
            long kvF16 = info.KvBytesPerToken(GgmlType.F16), kvF32 = info.KvBytesPerToken(GgmlType.F32), kvQ8 = info.KvBytesPerToken(GgmlType.Q8_0);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["architecture"] = info.Architecture,
                    ["files"] = files,
                    ["name"] = info.Name,
                    ["layers"] = info.Layers,
                    ["parameters"] = info.TotalParameters,
                    ["active_parameters"] = info.ActiveParameters,
                    ["mtp_parameters"] = info.MtpParameters,
                    ["weight_bytes"] = info.WeightBytes,
                    ["bytes_by_type"] = info.BytesByType.ToDictionary(kv => GgmlTypeInfo.Name(kv.Key), kv => kv.Value),
                    ["kv_bytes_per_token_f16"] = kvF16,
                    ["kv_bytes_per_token_f32"] = kvF32,
                    ["kv_bytes_per_token_q8_0"] = kvQ8,
                    ["context"] = context,
                    ["memory_bytes_f32_kv"] = info.WeightBytes + kvF32 * context,
                    ["memory_bytes_f16_kv"] = info.WeightBytes + kvF16 * context,
                    ["memory_bytes_q8_0_kv"] = info.WeightBytes + kvQ8 * context,
                }));
                return 0;
            }
            Console.WriteLine($"architecture   {info.Architecture} ({info.Name}), {info.Layers} layers");
            if (files > 1) Console.WriteLine($"files          {files} parts (a split model)");
            Console.WriteLine($"parameters     {Billions(info.TotalParameters)} total, {Billions(info.ActiveParameters)} active per token" +
                              (info.MtpParameters > 0 ? $", plus {Billions(info.MtpParameters)} in MTP layers" : ""));
            Console.WriteLine($"weights        {Bytes(info.WeightBytes)}: " +
                              string.Join(", ", info.BytesByType.OrderByDescending(kv => kv.Value).Select(kv => $"{GgmlTypeInfo.Name(kv.Key)} {Bytes(kv.Value)}")));
            Console.WriteLine($"KV cache       {info.KvValuesPerToken:N0} values per token: {kvF32 / 1024.0:F1} KiB in F32 (R1Sharp's default), {kvF16 / 1024.0:F1} KiB in F16 (--cache-type f16, llama.cpp's default), {kvQ8 / 1024.0:F1} KiB in Q8_0 (--cache-type q8_0)");
            Console.WriteLine($"at {context:N0} tokens  KV {Bytes(kvF32 * context)} (F32), {Bytes(kvF16 * context)} (F16), {Bytes(kvQ8 * context)} (Q8_0); " +
                              $"memory needed ≈ {Bytes(info.WeightBytes + kvF32 * context)}, {Bytes(info.WeightBytes + kvF16 * context)}, {Bytes(info.WeightBytes + kvQ8 * context)} (mapped weights + cache)");
            return 0;
        }));
        return cmd;
    }

    private static string Billions(long n) => n >= 1_000_000_000 ? $"{n / 1e9:F1}B" : $"{n / 1e6:F1}M";

    private static string Bytes(long b) => b >= 1L << 30 ? $"{b / (double)(1L << 30):F2} GiB" : $"{b / (double)(1L << 20):F1} MiB";
}
