// Random-weight GGUF models of real and tiny shapes: test subjects for the oracles and benchmarks
// (no weights can be downloaded here). Deterministic for a seed, whatever the thread count.
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Sampling;
using R1Sharp.Tensors;
using R1Sharp.Tokenization;

namespace R1Sharp.Models;

/// <summary>The shape of a synthetic model.</summary>
public sealed record SynthSpec
{
    public required string Architecture { get; init; }
    public required string Name { get; init; }
    public required int Dim { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int FfnDim { get; init; }
    /// <summary>Vocabulary size; 0 for the tiny BPE vocabulary as it is.</summary>
    public int VocabSize { get; init; }
    public int ContextLength { get; init; } = 4096;
    public float RopeTheta { get; init; } = 10000f;
    public float NormEps { get; init; } = 1e-6f;
    public bool TiedOutput { get; init; }
    /// <summary>Tokenizer pre-tokenizer name written to tokenizer.ggml.pre.</summary>
    public string Pre => Architecture == "llama" ? "llama-bpe" : "deepseek-r1-qwen";
}

public static class Synthesizer
{
    public static readonly IReadOnlyList<SynthSpec> Presets =
    [
        new() { Architecture = "qwen2", Name = "tiny", Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 160, ContextLength = 2048 },
        new() { Architecture = "llama", Name = "tiny", Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 160, ContextLength = 2048, NormEps = 1e-5f, RopeTheta = 500000f },
        new() { Architecture = "qwen2", Name = "r1-distill-qwen-1.5b", Dim = 1536, Layers = 28, Heads = 12, KvHeads = 2, FfnDim = 8960, VocabSize = 151936, ContextLength = 131072 },
        new() { Architecture = "qwen2", Name = "r1-distill-qwen-7b", Dim = 3584, Layers = 28, Heads = 28, KvHeads = 4, FfnDim = 18944, VocabSize = 152064, ContextLength = 131072 },
        new() { Architecture = "llama", Name = "r1-distill-llama-8b", Dim = 4096, Layers = 32, Heads = 32, KvHeads = 8, FfnDim = 14336, VocabSize = 128256, ContextLength = 131072, NormEps = 1e-5f, RopeTheta = 500000f },
    ];

    public static SynthSpec FindPreset(string arch, string name) =>
        Presets.FirstOrDefault(p => p.Architecture == arch && p.Name == name)
        ?? throw new ArgumentException($"no preset '{name}' for architecture '{arch}' (presets: {string.Join(", ", Presets.Where(p => p.Architecture == arch).Select(p => p.Name))})");

    /// <summary>The types synth can write.</summary>
    public static readonly IReadOnlyList<GgmlType> Types = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0];

    /// <summary>Writes a model of shape <paramref name="spec"/> with weights of <paramref name="type"/> (norms and biases stay F32).</summary>
    public static void Write(SynthSpec spec, GgmlType type, ulong seed, string path)
    {
        if (!Types.Contains(type)) throw new ArgumentException($"synth cannot write type {GgmlTypeInfo.Name(type)} (types: {string.Join(", ", Types.Select(GgmlTypeInfo.Name))})");
        var vocab = BuildVocab(spec);
        int vocabSize = vocab.Tokens.Length;
        int headDim = spec.Dim / spec.Heads;
        int qDim = spec.Heads * headDim, kvDim = spec.KvHeads * headDim;
        int blockSize = GgmlTypeInfo.BlockSize(type);
        foreach (int cols in new[] { spec.Dim, spec.FfnDim, qDim })
            if (cols % blockSize != 0) throw new ArgumentException($"type {GgmlTypeInfo.Name(type)} needs row lengths that are multiples of {blockSize}; {cols} is not");

        var w = new GgufWriter();
        string a = spec.Architecture;
        w.SetMetadata("general.architecture", GgufValue.Of(a));
        w.SetMetadata("general.name", GgufValue.Of($"r1sharp-synth-{spec.Name}"));
        w.SetMetadata("general.file_type", GgufValue.Of((uint)FileType(type)));
        w.SetMetadata($"{a}.context_length", GgufValue.Of((uint)spec.ContextLength));
        w.SetMetadata($"{a}.embedding_length", GgufValue.Of((uint)spec.Dim));
        w.SetMetadata($"{a}.block_count", GgufValue.Of((uint)spec.Layers));
        w.SetMetadata($"{a}.feed_forward_length", GgufValue.Of((uint)spec.FfnDim));
        w.SetMetadata($"{a}.attention.head_count", GgufValue.Of((uint)spec.Heads));
        w.SetMetadata($"{a}.attention.head_count_kv", GgufValue.Of((uint)spec.KvHeads));
        w.SetMetadata($"{a}.rope.freq_base", GgufValue.Of(spec.RopeTheta));
        w.SetMetadata($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(spec.NormEps));
        foreach (var kv in vocab.ToGgufMetadata()) w.SetMetadata(kv.Key, kv.Value);

        int index = 0;
        void Matrix(string name, int cols, int rows, GgmlType t) => AddMatrix(w, name, cols, rows, t, seed, index++);
        void Vec(string name, int n, float center, float spread) => AddVector(w, name, n, center, spread, seed, index++);

        Matrix("token_embd.weight", spec.Dim, vocabSize, type);
        Vec("output_norm.weight", spec.Dim, 1f, 0.2f);
        if (!spec.TiedOutput) Matrix("output.weight", spec.Dim, vocabSize, type);
        for (int l = 0; l < spec.Layers; l++)
        {
            string b = $"blk.{l}.";
            Vec(b + "attn_norm.weight", spec.Dim, 1f, 0.2f);
            Matrix(b + "attn_q.weight", spec.Dim, qDim, type);
            Matrix(b + "attn_k.weight", spec.Dim, kvDim, type);
            Matrix(b + "attn_v.weight", spec.Dim, kvDim, type);
            if (a == "qwen2")
            {
                Vec(b + "attn_q.bias", qDim, 0f, 0.5f);
                Vec(b + "attn_k.bias", kvDim, 0f, 0.5f);
                Vec(b + "attn_v.bias", kvDim, 0f, 0.5f);
            }
            Matrix(b + "attn_output.weight", qDim, spec.Dim, type);
            Vec(b + "ffn_norm.weight", spec.Dim, 1f, 0.2f);
            Matrix(b + "ffn_gate.weight", spec.Dim, spec.FfnDim, type);
            Matrix(b + "ffn_up.weight", spec.Dim, spec.FfnDim, type);
            Matrix(b + "ffn_down.weight", spec.FfnDim, spec.Dim, type);
        }
        w.Write(path);
    }

    /// <summary>The tiny BPE vocabulary, padded with unused tokens to the preset's size, R1 special tokens last
    /// (for a Qwen-sized vocabulary they land on R1-Distill-Qwen's ids: eos 151643 … &lt;/think&gt; 151649).</summary>
    public static TokenizerData BuildVocab(SynthSpec spec)
    {
        var tiny = TinyVocab.Build(spec.Pre);
        if (spec.VocabSize == 0) return tiny;
        var tokens = new List<string>();
        var types = new List<int>();
        var special = new List<(string Token, int Type)>();
        for (int i = 0; i < tiny.Tokens.Length; i++)
        {
            if (tiny.TokenTypes[i] is 3 or 4) special.Add((tiny.Tokens[i], tiny.TokenTypes[i]));
            else { tokens.Add(tiny.Tokens[i]); types.Add(tiny.TokenTypes[i]); }
        }
        // Qwen's vocabulary ends with 151643 eos, then 293 more; ours keeps the specials at the same place
        int specialBase = spec.VocabSize == 151936 || spec.VocabSize == 152064 ? 151643 : spec.VocabSize - special.Count - 8;
        if (specialBase < tokens.Count) throw new ArgumentException($"vocabulary size {spec.VocabSize} is too small");
        for (int i = tokens.Count; i < specialBase; i++) { tokens.Add($"<|synth_{i}|>"); types.Add(5); }
        var ids = new Dictionary<string, int>();
        foreach (var (tok, type) in special) { ids[tok] = tokens.Count; tokens.Add(tok); types.Add(type); }
        for (int i = tokens.Count; i < spec.VocabSize; i++) { tokens.Add($"<|synth_{i}|>"); types.Add(5); }
        string bos = tiny.Tokens[tiny.BosId], eos = tiny.Tokens[tiny.EosId];
        return tiny with
        {
            Tokens = tokens.ToArray(),
            TokenTypes = types.ToArray(),
            BosId = ids[bos],
            EosId = ids[eos],
            PadId = tiny.PadId is int p ? ids.GetValueOrDefault(tiny.Tokens[p], ids[eos]) : null,
        };
    }

    private static int FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => 0, GgmlType.F16 => 1, GgmlType.Q8_0 => 7, GgmlType.BF16 => 32, _ => 0,
    };

    private static void AddMatrix(GgufWriter w, string name, int cols, int rows, GgmlType type, ulong seed, int index)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        float scale = 1.0f / MathF.Sqrt(cols) * 1.7f; // uniform(-a, a) has std a/√3: weights std ≈ 1/√cols
        w.AddTensor(name, type, [cols, rows], stream =>
        {
            const int rowsPerChunk = 256;
            var chunk = new byte[rowBytes * rowsPerChunk];
            for (int r0 = 0; r0 < rows; r0 += rowsPerChunk)
            {
                int n = Math.Min(rowsPerChunk, rows - r0);
                Parallel.For(0, n, () => new float[cols], (i, _, buf) =>
                {
                    var rng = new Xoshiro256(Mix(seed, (ulong)index, (ulong)(r0 + i)));
                    for (int c = 0; c < cols; c++) buf[c] = rng.NextSignedFloat() * scale;
                    Quantization.QuantizeRow(type, buf, chunk.AsSpan((int)(i * rowBytes), (int)rowBytes));
                    return buf;
                }, _ => { });
                stream.Write(chunk, 0, (int)(n * rowBytes));
            }
        });
    }

    private static void AddVector(GgufWriter w, string name, int n, float center, float spread, ulong seed, int index)
    {
        var rng = new Xoshiro256(Mix(seed, (ulong)index, 0));
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = center + spread * rng.NextSignedFloat();
        var bytes = new byte[n * sizeof(float)];
        Buffer.BlockCopy(v, 0, bytes, 0, bytes.Length);
        w.AddTensor(name, GgmlType.F32, [n], bytes);
    }

    private static ulong Mix(ulong seed, ulong a, ulong b) => seed * 0x9E3779B97F4A7C15UL ^ (a + 1) * 0xBF58476D1CE4E5B9UL ^ (b + 1) * 0x94D049BB133111EBUL;
}
