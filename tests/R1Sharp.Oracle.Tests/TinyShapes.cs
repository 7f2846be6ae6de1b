// Tiny model shapes that cover what the forward pass must get right: GQA ratios 1, 2 and 3, head sizes 16 to 128,
// odd FFN widths, tied and untied output. Files are written once per test run into a temp folder.
using System.Collections.Concurrent;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;

namespace R1Sharp.Oracle.Tests;

public static class TinyShapes
{
    public static readonly IReadOnlyDictionary<string, SynthSpec> All = new Dictionary<string, SynthSpec>
    {
        // qwen2: biases on Q/K/V, NEOX RoPE
        ["qwen2-gqa1"] = Spec("qwen2", dim: 64, heads: 4, kvHeads: 4, ffn: 96),
        ["qwen2-gqa2"] = Spec("qwen2", dim: 64, heads: 4, kvHeads: 2, ffn: 160),
        ["qwen2-gqa3-hd16-oddffn"] = Spec("qwen2", dim: 96, heads: 6, kvHeads: 2, ffn: 97),
        ["qwen2-hd128-tied"] = Spec("qwen2", dim: 256, heads: 2, kvHeads: 1, ffn: 160, tied: true),
        // llama: adjacent-pair RoPE, no biases
        ["llama-gqa1-tied"] = Spec("llama", dim: 64, heads: 2, kvHeads: 2, ffn: 128, tied: true),
        ["llama-gqa2"] = Spec("llama", dim: 64, heads: 4, kvHeads: 2, ffn: 160),
        ["llama-gqa3-hd32-oddffn"] = Spec("llama", dim: 192, heads: 6, kvHeads: 2, ffn: 131),
        ["llama-hd128"] = Spec("llama", dim: 256, heads: 2, kvHeads: 2, ffn: 96),
        // deepseek2: the synth presets' variants (with and without q_lora, split and legacy kv_b, sigmoid and softmax
        // routing, with and without expert groups and YaRN)
        ["ds2-v3"] = Synthesizer.FindPreset("deepseek2", "tiny") with { ContextLength = 256 },
        ["ds2-v3-legacy"] = Synthesizer.FindPreset("deepseek2", "tiny-v3-legacy") with { ContextLength = 256 },
        ["ds2-v2"] = Synthesizer.FindPreset("deepseek2", "tiny-v2") with { ContextLength = 256 },
        ["ds2-lite"] = Synthesizer.FindPreset("deepseek2", "tiny-lite") with { ContextLength = 256 },
        ["ds2-lite-split"] = Synthesizer.FindPreset("deepseek2", "tiny-lite-split") with { ContextLength = 256 },
    };


    private static SynthSpec Spec(string arch, int dim, int heads, int kvHeads, int ffn, bool tied = false) => new()
    {
        Architecture = arch, Name = "test", Dim = dim, Layers = 2, Heads = heads, KvHeads = kvHeads, FfnDim = ffn,
        TiedOutput = tied, ContextLength = 256, NormEps = arch == "llama" ? 1e-5f : 1e-6f,
        RopeTheta = arch == "llama" ? 500000f : 10000f,
    };

    /// <summary>One scratch folder for the models this test run writes, removed when the process exits.</summary>
    public static readonly string ScratchDir = CreateScratch();

    private static string CreateScratch()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-oracle-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        return dir;
    }

    private static readonly string s_dir = ScratchDir;
    private static readonly ConcurrentDictionary<string, string> s_files = new();

    public static string Write(string shape, GgmlType type) => s_files.GetOrAdd($"{shape}-{type}", key =>
    {
        string path = Path.Combine(s_dir, key + ".gguf");
        Synthesizer.Write(All[shape], type, seed: 17, path);
        return path;
    });

    /// <summary>Random ordinary token ids (no control tokens) of the model in <paramref name="path"/>.</summary>
    public static int[] Tokens(string path, int count, ulong seed)
    {
        using var file = GgufFile.Open(path);
        int[] types = file.GetInt32Array("tokenizer.ggml.token_type") ?? throw new InvalidDataException("no token types");
        var normal = Enumerable.Range(0, types.Length).Where(i => types[i] is 1 or 6).ToArray();
        var rng = new Xoshiro256(seed);
        return Enumerable.Range(0, count).Select(_ => normal[(int)(rng.Next() % (ulong)normal.Length)]).ToArray();
    }
}
