// The shape and hyper-parameters of a model, read from GGUF metadata ("{arch}.*" keys).
// Features are derived from metadata or tensor presence, never from a magic dimension.
using R1Sharp.Formats;

namespace R1Sharp.Models;

/// <summary>How rotary embeddings pair the dimensions of a head.</summary>
public enum RopeStyle
{
    /// <summary>Adjacent pairs (x[2i], x[2i+1]): llama, deepseek2.</summary>
    Normal,
    /// <summary>First half with second half (x[i], x[i+d/2]): qwen2 ("NEOX" in ggml).</summary>
    Neox,
}

public sealed record ModelConfig
{
    /// <summary>general.architecture: llama, qwen2, deepseek2.</summary>
    public required string Architecture { get; init; }
    /// <summary>Number of token ids (rows of token_embd).</summary>
    public required int VocabSize { get; init; }
    /// <summary>Residual stream width (embedding_length).</summary>
    public required int Dim { get; init; }
    /// <summary>Transformer blocks (block_count).</summary>
    public required int Layers { get; init; }
    /// <summary>Hidden width of the SwiGLU feed-forward (feed_forward_length).</summary>
    public required int FfnDim { get; init; }
    /// <summary>Training context length (context_length); the default KV-cache size is capped by it.</summary>
    public required int ContextLength { get; init; }

    // --- attention ---
    /// <summary>Query heads (attention.head_count).</summary>
    public required int Heads { get; init; }
    /// <summary>Key/value heads (attention.head_count_kv); Heads / KvHeads queries share one KV head.</summary>
    public required int KvHeads { get; init; }
    /// <summary>Width of one query/key head (attention.key_length, default Dim / Heads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>Width of one value head (attention.value_length, default HeadDim).</summary>
    public required int ValueHeadDim { get; init; }
    /// <summary>RMSNorm epsilon (attention.layer_norm_rms_epsilon).</summary>
    public required float NormEps { get; init; }

    // --- rotary position embedding ---
    /// <summary>Base of the RoPE frequencies (rope.freq_base, default 10000).</summary>
    public required float RopeTheta { get; init; }
    /// <summary>Leading dimensions of each head that are rotated (rope.dimension_count, default HeadDim).</summary>
    public required int RopeDim { get; init; }
    public required RopeStyle RopeStyle { get; init; }

    /// <summary>Query heads per KV head.</summary>
    public int GqaRatio => Heads / KvHeads;

    public static ModelConfig FromGguf(GgufFile file, int vocabSize, RopeStyle ropeStyle)
    {
        string arch = file.RequireString("general.architecture");
        int Req(string key) => checked((int)file.RequireInt($"{arch}.{key}"));
        int Opt(string key, int fallback) => file.GetInt($"{arch}.{key}") is long v ? checked((int)v) : fallback;

        int dim = Req("embedding_length");
        int heads = Req("attention.head_count");
        int headDim = Opt("attention.key_length", heads > 0 ? dim / heads : 0);
        var config = new ModelConfig
        {
            Architecture = arch,
            VocabSize = vocabSize,
            Dim = dim,
            Layers = Req("block_count"),
            FfnDim = Req("feed_forward_length"),
            ContextLength = Opt("context_length", 4096),
            Heads = heads,
            KvHeads = Opt("attention.head_count_kv", heads),
            HeadDim = headDim,
            ValueHeadDim = Opt("attention.value_length", headDim),
            NormEps = (float)(file.GetFloat($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5),
            RopeTheta = (float)(file.GetFloat($"{arch}.rope.freq_base") ?? 10000.0),
            RopeDim = Opt("rope.dimension_count", headDim),
            RopeStyle = ropeStyle,
        };
        config.Validate();
        return config;
    }

    /// <summary>Checks that the numbers describe a model we can run; throws a one-line InvalidDataException.</summary>
    public void Validate()
    {
        void Check(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{Architecture}: {what}");
        }
        Check(Dim > 0 && Layers > 0 && FfnDim > 0 && VocabSize > 0, "dimensions must be positive");
        Check(Heads > 0 && KvHeads > 0 && Heads % KvHeads == 0, $"head_count {Heads} is not a multiple of head_count_kv {KvHeads}");
        Check(HeadDim > 0 && HeadDim % 2 == 0, $"key_length {HeadDim} must be positive and even");
        Check(ValueHeadDim > 0, $"value_length {ValueHeadDim} must be positive");
        Check(RopeDim > 0 && RopeDim <= HeadDim && RopeDim % 2 == 0, $"rope.dimension_count {RopeDim} must be even and at most {HeadDim}");
        Check(NormEps > 0 && float.IsFinite(NormEps), "layer_norm_rms_epsilon must be positive");
        Check(RopeTheta > 0 && float.IsFinite(RopeTheta), "rope.freq_base must be positive");
        Check(ContextLength > 0, "context_length must be positive");
    }
}
