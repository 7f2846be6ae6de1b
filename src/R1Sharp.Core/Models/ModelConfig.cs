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

    /// <summary>Multi-head latent attention (deepseek2); null for ordinary attention.</summary>
    public MlaConfig? Mla { get; init; }
    /// <summary>Mixture of experts (deepseek2); null for a dense model.</summary>
    public MoeConfig? Moe { get; init; }
    /// <summary>YaRN context extension of RoPE; null without rope scaling.</summary>
    public YarnConfig? Yarn { get; init; }
    /// <summary>Extra multi-token-prediction layers stored after the main ones (nextn_predict_layers); not run.</summary>
    public int MtpLayers { get; init; }

    public static ModelConfig FromGguf(GgufFile file, int vocabSize, RopeStyle ropeStyle)
    {
        string arch = file.RequireString("general.architecture");
        int Req(string key) => ToInt($"{arch}.{key}", file.RequireInt($"{arch}.{key}"));
        int Opt(string key, int fallback) => file.GetInt($"{arch}.{key}") is long v ? ModelConfig.ToInt($"{arch}.{key}", v) : fallback;

        int dim = Req("embedding_length");
        int mtp = Opt("nextn_predict_layers", 0);
        int heads = Req("attention.head_count");
        int headDim = Opt("attention.key_length", heads > 0 ? dim / heads : 0);
        var config = new ModelConfig
        {
            Architecture = arch,
            VocabSize = vocabSize,
            Dim = dim,
            Layers = Req("block_count") - mtp,
            MtpLayers = mtp,
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
            Mla = MlaConfig.FromGguf(file, arch, headDim),
            Moe = MoeConfig.FromGguf(file, arch),
            Yarn = YarnConfig.FromGguf(file, arch),
        };
        config.Validate();
        return config;
    }

    /// <summary>A metadata integer that must fit an int; a one-line InvalidDataException naming the key otherwise.</summary>
    internal static int ToInt(string key, long value) =>
        value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new InvalidDataException($"{key} = {value} is out of range");

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
        Check(MtpLayers >= 0 && Layers > 0, "nextn_predict_layers must be below block_count");
        Mla?.Validate(Architecture, Heads);
        Moe?.Validate(Architecture, Layers);
        Yarn?.Validate(Architecture);
    }
}

/// <summary>
/// Multi-head latent attention. Keys and values of all heads are rebuilt from one compressed latent c_kv per token
/// (plus one RoPE key shared by all heads), so the cache holds KvLoraRank + RopeDim values per token and layer.
/// </summary>
public sealed record MlaConfig
{
    /// <summary>Rank of the query compression (attention.q_lora_rank); 0 when queries are projected directly (V2-Lite).</summary>
    public required int QLoraRank { get; init; }
    /// <summary>Width of the compressed KV latent c_kv (attention.kv_lora_rank).</summary>
    public required int KvLoraRank { get; init; }
    /// <summary>Per-head query/key dimensions without position (key_length_mla − rope dims).</summary>
    public required int NopeDim { get; init; }
    /// <summary>Per-head query/key dimensions that carry RoPE (rope.dimension_count).</summary>
    public required int RopeDim { get; init; }
    /// <summary>Per-head value width (value_length_mla).</summary>
    public required int VDim { get; init; }

    /// <summary>Width of one query head: NopeDim + RopeDim.</summary>
    public int QkHeadDim => NopeDim + RopeDim;
    /// <summary>Values cached per token and layer in the absorbed form.</summary>
    public int CacheDim => KvLoraRank + RopeDim;

    public static MlaConfig? FromGguf(GgufFile file, string arch, int keyLength)
    {
        if (file.GetInt($"{arch}.attention.kv_lora_rank") is not long kvLora) return null;
        int rope = checked((int)file.RequireInt($"{arch}.rope.dimension_count"));
        // files converted for absorbed MLA describe the latent in key/value_length and the heads in *_mla;
        // older files describe the heads in key/value_length
        int qk = checked((int)(file.GetInt($"{arch}.attention.key_length_mla") ?? keyLength));
        int v = checked((int)(file.GetInt($"{arch}.attention.value_length_mla") ?? file.GetInt($"{arch}.attention.value_length") ?? 0));
        return new MlaConfig
        {
            QLoraRank = checked((int)(file.GetInt($"{arch}.attention.q_lora_rank") ?? 0)),
            KvLoraRank = checked((int)kvLora),
            NopeDim = qk - rope,
            RopeDim = rope,
            VDim = v,
        };
    }

    public void Validate(string arch, int heads)
    {
        if (QLoraRank < 0 || KvLoraRank <= 0 || NopeDim <= 0 || RopeDim <= 0 || RopeDim % 2 != 0 || VDim <= 0)
            throw new InvalidDataException($"{arch}: bad MLA dimensions (q_lora {QLoraRank}, kv_lora {KvLoraRank}, nope {NopeDim}, rope {RopeDim}, v {VDim})");
    }
}

public enum ExpertGating
{
    /// <summary>softmax over all experts (DeepSeek-V2; expert_gating_func 1).</summary>
    Softmax = 1,
    /// <summary>independent sigmoids (DeepSeek-V3/R1; expert_gating_func 2).</summary>
    Sigmoid = 2,
}

/// <summary>Mixture of experts after the leading dense layers: routed experts chosen per token plus always-on shared ones.</summary>
public sealed record MoeConfig
{
    /// <summary>Routed experts per layer (expert_count).</summary>
    public required int Experts { get; init; }
    /// <summary>Experts chosen per token (expert_used_count).</summary>
    public required int ExpertsUsed { get; init; }
    /// <summary>Shared experts run for every token (expert_shared_count); their FFN is SharedExperts × ExpertFfnDim wide.</summary>
    public required int SharedExperts { get; init; }
    /// <summary>Hidden width of one expert (expert_feed_forward_length).</summary>
    public required int ExpertFfnDim { get; init; }
    /// <summary>Layers before the first MoE layer, which use the dense FFN (leading_dense_block_count).</summary>
    public required int LeadingDenseLayers { get; init; }
    public required ExpertGating Gating { get; init; }
    /// <summary>Whether the chosen experts' weights are normalized to sum 1 (expert_weights_norm).</summary>
    public required bool NormalizeWeights { get; init; }
    /// <summary>Factor on the routed experts' weights (expert_weights_scale; 2.5 in V3).</summary>
    public required float WeightsScale { get; init; }
    /// <summary>Expert groups for group-limited routing (expert_group_count; 1 = none).</summary>
    public required int Groups { get; init; }
    /// <summary>Groups kept per token (expert_group_used_count).</summary>
    public required int GroupsUsed { get; init; }

    public static MoeConfig? FromGguf(GgufFile file, string arch)
    {
        if (file.GetInt($"{arch}.expert_count") is not long experts || experts == 0) return null;
        int Opt(string key, int fallback) => file.GetInt($"{arch}.{key}") is long v ? ModelConfig.ToInt($"{arch}.{key}", v) : fallback;
        int groups = Opt("expert_group_count", 1);
        return new MoeConfig
        {
            Experts = checked((int)experts),
            ExpertsUsed = Opt("expert_used_count", 0),
            SharedExperts = Opt("expert_shared_count", 0),
            ExpertFfnDim = Opt("expert_feed_forward_length", 0),
            LeadingDenseLayers = Opt("leading_dense_block_count", 0),
            // files written before the key existed are DeepSeek-V2 (softmax)
            Gating = Opt("expert_gating_func", 1) == 2 ? ExpertGating.Sigmoid : ExpertGating.Softmax,
            NormalizeWeights = file.GetBool($"{arch}.expert_weights_norm") ?? false,
            WeightsScale = (float)(file.GetFloat($"{arch}.expert_weights_scale") ?? 1.0),
            Groups = Math.Max(groups, 1),
            GroupsUsed = Opt("expert_group_used_count", Math.Max(groups, 1)),
        };
    }

    public void Validate(string arch, int layers)
    {
        void Check(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{arch}: {what}");
        }
        Check(ExpertsUsed > 0 && ExpertsUsed <= Experts, $"expert_used_count {ExpertsUsed} must be in 1..{Experts}");
        Check(ExpertFfnDim > 0, "expert_feed_forward_length must be positive");
        Check(SharedExperts >= 0 && LeadingDenseLayers >= 0 && LeadingDenseLayers <= layers, "bad shared expert or leading dense layer count");
        Check(Experts % Groups == 0, $"expert_count {Experts} is not a multiple of expert_group_count {Groups}");
        Check(GroupsUsed >= 1 && GroupsUsed <= Groups, $"expert_group_used_count {GroupsUsed} must be in 1..{Groups}");
        Check(Groups == 1 || ExpertsUsed <= GroupsUsed * (Experts / Groups), "expert_used_count exceeds the experts of the groups kept");
        Check(float.IsFinite(WeightsScale) && WeightsScale > 0, "expert_weights_scale must be positive");
    }
}

/// <summary>YaRN RoPE scaling (rope.scaling.type = yarn).</summary>
public sealed record YarnConfig
{
    /// <summary>Context extension factor s (rope.scaling.factor); frequencies are interpolated by 1/s.</summary>
    public required float Factor { get; init; }
    /// <summary>Context the model was trained with before extension (rope.scaling.original_context_length).</summary>
    public required int OriginalContext { get; init; }
    /// <summary>Softmax-scale multiplier m: mscale = 1 + m·ln(s) (rope.scaling.yarn_log_multiplier; 0.1 in V3).</summary>
    public required float LogMultiplier { get; init; }
    /// <summary>Dimensions rotating at least this many times over the original context are not interpolated.</summary>
    public required float BetaFast { get; init; }
    /// <summary>Dimensions rotating at most this many times are fully interpolated.</summary>
    public required float BetaSlow { get; init; }

    /// <summary>Magnitude correction folded into the softmax scale (squared there).</summary>
    public float MScale => 1.0f + LogMultiplier * MathF.Log(Factor);

    public static YarnConfig? FromGguf(GgufFile file, string arch)
    {
        if (file.GetString($"{arch}.rope.scaling.type") != "yarn") return null;
        return new YarnConfig
        {
            Factor = (float)(file.GetFloat($"{arch}.rope.scaling.factor") ?? 1.0),
            OriginalContext = checked((int)(file.GetInt($"{arch}.rope.scaling.original_context_length") ?? file.GetInt($"{arch}.context_length") ?? 4096)),
            LogMultiplier = (float)(file.GetFloat($"{arch}.rope.scaling.yarn_log_multiplier") ?? 0.0),
            BetaFast = (float)(file.GetFloat($"{arch}.rope.scaling.yarn_beta_fast") ?? 32.0),
            BetaSlow = (float)(file.GetFloat($"{arch}.rope.scaling.yarn_beta_slow") ?? 1.0),
        };
    }

    public void Validate(string arch)
    {
        if (!(Factor >= 1 && float.IsFinite(Factor)) || OriginalContext <= 0 || !(BetaFast > 0) || !(BetaSlow > 0) || !float.IsFinite(LogMultiplier))
            throw new InvalidDataException($"{arch}: bad YaRN parameters (factor {Factor}, original context {OriginalContext})");
    }
}
