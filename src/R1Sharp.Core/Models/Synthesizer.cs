// Random-weight GGUF models of real and tiny shapes: test subjects for the oracles and benchmarks
// (no weights can be downloaded here). Deterministic for a seed, whatever the thread count.
// A spec becomes a plan (metadata + tensor list), which `synth` writes and `info` describes without writing.
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Kernels.Quants;
using R1Sharp.Sampling;
using R1Sharp.Tensors;
using R1Sharp.Tokenization;

namespace R1Sharp.Models;

/// <summary>The shape of a synthetic model. The MLA/MoE/YaRN groups apply to deepseek2 only.</summary>
public sealed record SynthSpec
{
    public required string Architecture { get; init; }
    public required string Name { get; init; }
    public required int Dim { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    /// <summary>Dense FFN width (deepseek2: of the leading dense layers).</summary>
    public required int FfnDim { get; init; }
    /// <summary>Vocabulary size; 0 for the tiny BPE vocabulary as it is.</summary>
    public int VocabSize { get; init; }
    public int ContextLength { get; init; } = 4096;
    public float RopeTheta { get; init; } = 10000f;
    public float NormEps { get; init; } = 1e-6f;
    public bool TiedOutput { get; init; }
    public MlaConfig? Mla { get; init; }
    public MoeConfig? Moe { get; init; }
    public YarnConfig? Yarn { get; init; }
    /// <summary>deepseek2: write attn_k_b/attn_v_b (true) or the older single attn_kv_b (false).</summary>
    public bool SplitKvB { get; init; } = true;
    /// <summary>deepseek2: multi-token-prediction layers appended after the main ones.</summary>
    public int MtpLayers { get; init; }
    /// <summary>llama: Llama 3.1's RoPE scaling, written as the tensor rope_freqs.weight (as R1-Distill-Llama has it).</summary>
    public Llama3RopeScaling? Llama3Rope { get; init; }

    /// <summary>Tokenizer pre-tokenizer name written to tokenizer.ggml.pre.</summary>
    public string Pre => Architecture switch { "llama" => "llama-bpe", "deepseek2" => "deepseek-v3", _ => "deepseek-r1-qwen" };
}

/// <summary>One tensor of a plan: F32 vectors keep their type; matrices take the requested weight type.</summary>
public sealed record PlannedTensor(string Name, long[] Shape, PlannedKind Kind)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

public enum PlannedKind { Matrix, Norm, Bias, RouterMatrix, RopeFreqs }

/// <summary>Llama 3.1's "llama3" rope_scaling (config.json): frequencies of long wavelengths divided by Factor.</summary>
public sealed record Llama3RopeScaling(float Factor = 8, float LowFreqFactor = 1, float HighFreqFactor = 4, int OriginalContext = 8192)
{
    /// <summary>
    /// The divisor of each of the headDim/2 RoPE frequencies, as convert_hf_to_gguf.py computes rope_freqs.weight:
    /// 1 for wavelengths under OriginalContext/HighFreqFactor, Factor above OriginalContext/LowFreqFactor, and a
    /// smooth blend between.
    /// </summary>
    public float[] Divisors(int headDim, float theta)
    {
        var r = new float[headDim / 2];
        double lowWavelen = OriginalContext / LowFreqFactor, highWavelen = OriginalContext / HighFreqFactor;
        for (int i = 0; i < r.Length; i++)
        {
            float freq = 1.0f / MathF.Pow(theta, 2 * i / (float)headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) r[i] = 1;
            else if (wavelen > lowWavelen) r[i] = Factor;
            else
            {
                double smooth = (OriginalContext / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                r[i] = (float)(1 / ((1 - smooth) / Factor + smooth));
            }
        }
        return r;
    }
}

public static class Synthesizer
{
    /// <summary>
    /// Tiny deepseek2 variants: MLA with and without q_lora, split and legacy kv_b, sigmoid (V3) and softmax (V2) routing,
    /// with and without expert groups and YaRN. Variants without q_lora have 26 layers, because llama.cpp takes a
    /// 26- or 27-layer deepseek2 for the "lite" shape that projects queries directly.
    /// </summary>
    private static SynthSpec TinyDeepSeek(string name, bool qLora, bool split, ExpertGating gating, int groups, float? yarnLogMul) => new()
    {
        Architecture = "deepseek2", Name = name, Dim = 64, Layers = qLora ? 3 : 26, Heads = 4, KvHeads = 1, FfnDim = 96,
        ContextLength = 2048, SplitKvB = split,
        Mla = new() { QLoraRank = qLora ? 32 : 0, KvLoraRank = 32, NopeDim = 32, RopeDim = 16, VDim = 32 },
        Moe = new()
        {
            Experts = 8, ExpertsUsed = 3, SharedExperts = 1, ExpertFfnDim = 32, LeadingDenseLayers = 1, Gating = gating,
            NormalizeWeights = gating == ExpertGating.Sigmoid, WeightsScale = gating == ExpertGating.Sigmoid ? 2.5f : 1.0f,
            Groups = groups, GroupsUsed = groups > 1 ? 2 : 1,
        },
        Yarn = yarnLogMul is float m ? new() { Factor = 40, OriginalContext = 4096, LogMultiplier = m, BetaFast = 32, BetaSlow = 1 } : null,
    };

    private static readonly SynthSpec s_deepSeekR1 = new()
    {
        Architecture = "deepseek2", Name = "deepseek-r1", Dim = 7168, Layers = 61, Heads = 128, KvHeads = 1, FfnDim = 18432, VocabSize = 129280, ContextLength = 163840,
        Mla = new() { QLoraRank = 1536, KvLoraRank = 512, NopeDim = 128, RopeDim = 64, VDim = 128 },
        Moe = new()
        {
            Experts = 256, ExpertsUsed = 8, SharedExperts = 1, ExpertFfnDim = 2048, LeadingDenseLayers = 3,
            Gating = ExpertGating.Sigmoid, NormalizeWeights = true, WeightsScale = 2.5f, Groups = 8, GroupsUsed = 4,
        },
        Yarn = new() { Factor = 40, OriginalContext = 4096, LogMultiplier = 0.1f, BetaFast = 32, BetaSlow = 1 },
        MtpLayers = 1,
    };

    public static readonly IReadOnlyList<SynthSpec> Presets =
    [
        new() { Architecture = "qwen2", Name = "tiny", Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 160, ContextLength = 2048 },
        new() { Architecture = "llama", Name = "tiny", Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 160, ContextLength = 2048, NormEps = 1e-5f, RopeTheta = 500000f },
        TinyDeepSeek("tiny", qLora: true, split: true, ExpertGating.Sigmoid, groups: 4, yarnLogMul: 0.1f),
        TinyDeepSeek("tiny-v3-legacy", qLora: true, split: false, ExpertGating.Sigmoid, groups: 4, yarnLogMul: 0.1f),
        TinyDeepSeek("tiny-v2", qLora: true, split: false, ExpertGating.Softmax, groups: 1, yarnLogMul: 0.0707f),
        TinyDeepSeek("tiny-lite", qLora: false, split: false, ExpertGating.Softmax, groups: 1, yarnLogMul: 0.0707f),
        TinyDeepSeek("tiny-lite-split", qLora: false, split: true, ExpertGating.Sigmoid, groups: 1, yarnLogMul: null),
        // the tiny V3 shape with one multi-token-prediction layer (blk.3.nextn.*), for MTP drafting
        TinyDeepSeek("tiny-mtp", qLora: true, split: true, ExpertGating.Sigmoid, groups: 4, yarnLogMul: 0.1f) with { MtpLayers = 1 },
        new() { Architecture = "qwen2", Name = "r1-distill-qwen-1.5b", Dim = 1536, Layers = 28, Heads = 12, KvHeads = 2, FfnDim = 8960, VocabSize = 151936, ContextLength = 131072 },
        new() { Architecture = "qwen2", Name = "r1-distill-qwen-7b", Dim = 3584, Layers = 28, Heads = 28, KvHeads = 4, FfnDim = 18944, VocabSize = 152064, ContextLength = 131072 },
        new()
        {
            Architecture = "llama", Name = "r1-distill-llama-8b", Dim = 4096, Layers = 32, Heads = 32, KvHeads = 8, FfnDim = 14336, VocabSize = 128256,
            ContextLength = 131072, NormEps = 1e-5f, RopeTheta = 500000f, Llama3Rope = new(),
        },
        new()
        {
            Architecture = "deepseek2", Name = "deepseek-v2-lite", Dim = 2048, Layers = 27, Heads = 16, KvHeads = 1, FfnDim = 10944, VocabSize = 102400, ContextLength = 163840,
            Mla = new() { QLoraRank = 0, KvLoraRank = 512, NopeDim = 128, RopeDim = 64, VDim = 128 },
            Moe = new()
            {
                Experts = 64, ExpertsUsed = 6, SharedExperts = 2, ExpertFfnDim = 1408, LeadingDenseLayers = 1,
                Gating = ExpertGating.Softmax, NormalizeWeights = false, WeightsScale = 1.0f, Groups = 1, GroupsUsed = 1,
            },
            Yarn = new() { Factor = 40, OriginalContext = 4096, LogMultiplier = 0.0707f, BetaFast = 32, BetaSlow = 1 },
        },
        s_deepSeekR1,
        // the layout of unsloth's R1 GGUFs of January 2025 (UD-IQ1_S and the others): one attn_kv_b, no MTP layer
        s_deepSeekR1 with { Name = "deepseek-r1-ud", SplitKvB = false, MtpLayers = 0 },
    ];

    /// <summary><paramref name="spec"/> with <paramref name="layers"/> transformer blocks (null: as it is).</summary>
    public static SynthSpec WithLayers(SynthSpec spec, int? layers)
    {
        if (layers is not int n) return spec;
        int dense = spec.Moe?.LeadingDenseLayers ?? 0;
        if (n < 1 || n <= dense && spec.Moe is not null)
            throw new ArgumentException($"--layers {n}: {spec.Name} needs more than its {dense} leading dense blocks");
        return spec with { Layers = n };
    }

    public static SynthSpec FindPreset(string arch, string name) =>
        Presets.FirstOrDefault(p => p.Architecture == arch && p.Name == name)
        ?? throw new ArgumentException($"no preset '{name}' for architecture '{arch}' (presets: {string.Join(", ", Presets.Where(p => p.Architecture == arch).Select(p => p.Name))})");

    /// <summary>The types synth can write.</summary>
    public static readonly IReadOnlyList<GgmlType> Types =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
        GgmlType.IQ1_S, GgmlType.IQ1_M, GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S,
        GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4,
    ];

    /// <summary>Every tensor of a model of shape <paramref name="spec"/>, in file order.</summary>
    public static List<PlannedTensor> Plan(SynthSpec spec, int vocabSize)
    {
        var t = new List<PlannedTensor>();
        void Matrix(string name, params long[] shape) => t.Add(new(name, shape, PlannedKind.Matrix));
        void Norm(string name, long n) => t.Add(new(name, [n], PlannedKind.Norm));
        void Bias(string name, long n) => t.Add(new(name, [n], PlannedKind.Bias));

        if (spec.Llama3Rope is not null) t.Add(new("rope_freqs.weight", [spec.Dim / spec.Heads / 2], PlannedKind.RopeFreqs));
        Matrix("token_embd.weight", spec.Dim, vocabSize);
        Norm("output_norm.weight", spec.Dim);
        if (!spec.TiedOutput) Matrix("output.weight", spec.Dim, vocabSize);
        if (spec.Architecture != "deepseek2")
        {
            int headDim = spec.Dim / spec.Heads, qDim = spec.Heads * headDim, kvDim = spec.KvHeads * headDim;
            for (int l = 0; l < spec.Layers; l++)
            {
                string b = $"blk.{l}.";
                Norm(b + "attn_norm.weight", spec.Dim);
                Matrix(b + "attn_q.weight", spec.Dim, qDim);
                Matrix(b + "attn_k.weight", spec.Dim, kvDim);
                Matrix(b + "attn_v.weight", spec.Dim, kvDim);
                if (spec.Architecture == "qwen2")
                {
                    Bias(b + "attn_q.bias", qDim);
                    Bias(b + "attn_k.bias", kvDim);
                    Bias(b + "attn_v.bias", kvDim);
                }
                Matrix(b + "attn_output.weight", qDim, spec.Dim);
                Norm(b + "ffn_norm.weight", spec.Dim);
                Matrix(b + "ffn_gate.weight", spec.Dim, spec.FfnDim);
                Matrix(b + "ffn_up.weight", spec.Dim, spec.FfnDim);
                Matrix(b + "ffn_down.weight", spec.FfnDim, spec.Dim);
            }
            return t;
        }

        var mla = spec.Mla!;
        var moe = spec.Moe!;
        int H = spec.Heads;
        for (int l = 0; l < spec.Layers + spec.MtpLayers; l++)
        {
            string b = $"blk.{l}.";
            Norm(b + "attn_norm.weight", spec.Dim);
            if (mla.QLoraRank > 0)
            {
                Matrix(b + "attn_q_a.weight", spec.Dim, mla.QLoraRank);
                Norm(b + "attn_q_a_norm.weight", mla.QLoraRank);
                Matrix(b + "attn_q_b.weight", mla.QLoraRank, H * mla.QkHeadDim);
            }
            else
            {
                Matrix(b + "attn_q.weight", spec.Dim, H * mla.QkHeadDim);
            }
            Matrix(b + "attn_kv_a_mqa.weight", spec.Dim, mla.KvLoraRank + mla.RopeDim);
            Norm(b + "attn_kv_a_norm.weight", mla.KvLoraRank);
            if (spec.SplitKvB)
            {
                Matrix(b + "attn_k_b.weight", mla.NopeDim, mla.KvLoraRank, H);
                Matrix(b + "attn_v_b.weight", mla.KvLoraRank, mla.VDim, H);
            }
            else
            {
                Matrix(b + "attn_kv_b.weight", mla.KvLoraRank, H * (mla.NopeDim + mla.VDim));
            }
            Matrix(b + "attn_output.weight", H * mla.VDim, spec.Dim);
            Norm(b + "ffn_norm.weight", spec.Dim);
            if (l < moe.LeadingDenseLayers)
            {
                Matrix(b + "ffn_gate.weight", spec.Dim, spec.FfnDim);
                Matrix(b + "ffn_up.weight", spec.Dim, spec.FfnDim);
                Matrix(b + "ffn_down.weight", spec.FfnDim, spec.Dim);
            }
            else
            {
                t.Add(new(b + "ffn_gate_inp.weight", [spec.Dim, moe.Experts], PlannedKind.RouterMatrix));
                if (moe.Gating == ExpertGating.Sigmoid) Bias(b + "exp_probs_b.bias", moe.Experts);
                Matrix(b + "ffn_gate_exps.weight", spec.Dim, moe.ExpertFfnDim, moe.Experts);
                Matrix(b + "ffn_up_exps.weight", spec.Dim, moe.ExpertFfnDim, moe.Experts);
                Matrix(b + "ffn_down_exps.weight", moe.ExpertFfnDim, spec.Dim, moe.Experts);
                if (moe.SharedExperts > 0)
                {
                    int sh = moe.SharedExperts * moe.ExpertFfnDim;
                    Matrix(b + "ffn_gate_shexp.weight", spec.Dim, sh);
                    Matrix(b + "ffn_up_shexp.weight", spec.Dim, sh);
                    Matrix(b + "ffn_down_shexp.weight", sh, spec.Dim);
                }
            }
            if (l >= spec.Layers)
            {
                // the MTP block: combines the hidden state with the next token's embedding
                Matrix(b + "nextn.eh_proj.weight", 2L * spec.Dim, spec.Dim);
                Norm(b + "nextn.enorm.weight", spec.Dim);
                Norm(b + "nextn.hnorm.weight", spec.Dim);
                Norm(b + "nextn.shared_head_norm.weight", spec.Dim);
            }
        }
        return t;
    }

    /// <summary>The GGUF metadata of a model of shape <paramref name="spec"/> (tokenizer keys included).</summary>
    public static List<KeyValuePair<string, GgufValue>> Metadata(SynthSpec spec, GgmlType type, TokenizerData vocab) =>
        Metadata(spec, WeightMix.Of(type), vocab);

    /// <summary>The GGUF metadata of a model of shape <paramref name="spec"/> in the types of <paramref name="mix"/>.</summary>
    public static List<KeyValuePair<string, GgufValue>> Metadata(SynthSpec spec, WeightMix mix, TokenizerData vocab)
    {
        var m = new List<KeyValuePair<string, GgufValue>>();
        void Set(string key, GgufValue v) => m.Add(new(key, v));
        string a = spec.Architecture;
        Set("general.architecture", GgufValue.Of(a));
        Set("general.name", GgufValue.Of($"r1sharp-synth-{spec.Name}"));
        Set("general.file_type", GgufValue.Of((uint)mix.FileType));
        Set($"{a}.context_length", GgufValue.Of((uint)spec.ContextLength));
        Set($"{a}.embedding_length", GgufValue.Of((uint)spec.Dim));
        Set($"{a}.block_count", GgufValue.Of((uint)(spec.Layers + spec.MtpLayers)));
        Set($"{a}.feed_forward_length", GgufValue.Of((uint)spec.FfnDim));
        Set($"{a}.attention.head_count", GgufValue.Of((uint)spec.Heads));
        Set($"{a}.rope.freq_base", GgufValue.Of(spec.RopeTheta));
        Set($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(spec.NormEps));
        if (spec.Mla is not { } mla)
        {
            Set($"{a}.attention.head_count_kv", GgufValue.Of((uint)spec.KvHeads));
        }
        else
        {
            var moe = spec.Moe!;
            Set($"{a}.vocab_size", GgufValue.Of((uint)vocab.Tokens.Length));
            if (mla.QLoraRank > 0) Set($"{a}.attention.q_lora_rank", GgufValue.Of((uint)mla.QLoraRank));
            Set($"{a}.attention.kv_lora_rank", GgufValue.Of((uint)mla.KvLoraRank));
            Set($"{a}.rope.dimension_count", GgufValue.Of((uint)mla.RopeDim));
            if (spec.SplitKvB)
            {
                // absorbed layout: one latent "head" of kv_lora + rope; the per-head sizes move to *_mla
                Set($"{a}.attention.head_count_kv", GgufValue.Of(1u));
                Set($"{a}.attention.key_length", GgufValue.Of((uint)mla.CacheDim));
                Set($"{a}.attention.value_length", GgufValue.Of((uint)mla.KvLoraRank));
                Set($"{a}.attention.key_length_mla", GgufValue.Of((uint)mla.QkHeadDim));
                Set($"{a}.attention.value_length_mla", GgufValue.Of((uint)mla.VDim));
            }
            else
            {
                Set($"{a}.attention.head_count_kv", GgufValue.Of((uint)spec.Heads));
                Set($"{a}.attention.key_length", GgufValue.Of((uint)mla.QkHeadDim));
                Set($"{a}.attention.value_length", GgufValue.Of((uint)mla.VDim));
            }
            Set($"{a}.leading_dense_block_count", GgufValue.Of((uint)moe.LeadingDenseLayers));
            Set($"{a}.expert_feed_forward_length", GgufValue.Of((uint)moe.ExpertFfnDim));
            Set($"{a}.expert_count", GgufValue.Of((uint)moe.Experts));
            Set($"{a}.expert_used_count", GgufValue.Of((uint)moe.ExpertsUsed));
            Set($"{a}.expert_shared_count", GgufValue.Of((uint)moe.SharedExperts));
            Set($"{a}.expert_weights_scale", GgufValue.Of(moe.WeightsScale));
            Set($"{a}.expert_weights_norm", GgufValue.Of(moe.NormalizeWeights));
            Set($"{a}.expert_gating_func", GgufValue.Of((uint)moe.Gating));
            if (moe.Groups > 1)
            {
                Set($"{a}.expert_group_count", GgufValue.Of((uint)moe.Groups));
                Set($"{a}.expert_group_used_count", GgufValue.Of((uint)moe.GroupsUsed));
            }
            if (spec.MtpLayers > 0) Set($"{a}.nextn_predict_layers", GgufValue.Of((uint)spec.MtpLayers));
        }
        if (spec.Yarn is { } yarn)
        {
            Set($"{a}.rope.scaling.type", GgufValue.Of("yarn"));
            Set($"{a}.rope.scaling.factor", GgufValue.Of(yarn.Factor));
            Set($"{a}.rope.scaling.original_context_length", GgufValue.Of((uint)yarn.OriginalContext));
            Set($"{a}.rope.scaling.yarn_log_multiplier", GgufValue.Of(yarn.LogMultiplier));
        }
        m.AddRange(vocab.ToGgufMetadata());
        return m;
    }

    /// <summary>Writes a model of shape <paramref name="spec"/> with weights of <paramref name="type"/> (norms, biases and the router stay F32).</summary>
    public static void Write(SynthSpec spec, GgmlType type, ulong seed, string path)
    {
        if (!Types.Contains(type)) throw new ArgumentException($"synth cannot write type {GgmlTypeInfo.Name(type)} (types: {string.Join(", ", Types.Select(GgmlTypeInfo.Name))})");
        Write(spec, WeightMix.Of(type), seed, path);
    }

    /// <summary>Writes a model of shape <paramref name="spec"/> with each matrix in the type <paramref name="mix"/> gives it.</summary>
    public static void Write(SynthSpec spec, WeightMix mix, ulong seed, string path)
    {
        var vocab = BuildVocab(spec);
        var plan = Plan(spec, vocab.Tokens.Length);
        Write(Metadata(spec, mix, vocab), Typed(plan, mix, spec), seed, path, spec.Llama3Rope);
    }

    /// <summary>The plan's tensors with their types: matrices as <paramref name="mix"/> says, the rest F32.</summary>
    public static List<(PlannedTensor Tensor, GgmlType Type)> Typed(IReadOnlyList<PlannedTensor> plan, WeightMix mix, SynthSpec spec)
    {
        var layout = new ModelLayout(spec.Layers, spec.Moe?.LeadingDenseLayers ?? 0, plan.Any(p => p.Name == "output.weight"));
        return plan.Select(p => (p, p.Kind == PlannedKind.Matrix ? mix.TypeOf(p.Name, p.Shape, layout) : GgmlType.F32)).ToList();
    }

    /// <summary>
    /// Writes <paramref name="metadata"/> and random weights for <paramref name="tensors"/> in their types, streamed
    /// tensor by tensor (a file of any size is never held in memory). A Llama 3 rope_freqs.weight takes the divisors
    /// of <see cref="Llama3RopeScaling"/> (read from the metadata's rope settings).
    /// </summary>
    public static void Write(IEnumerable<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<(PlannedTensor Tensor, GgmlType Type)> tensors,
        ulong seed, string path, Llama3RopeScaling? rope = null)
    {
        var w = new GgufWriter();
        var md = metadata.ToList();
        foreach (var kv in md) w.SetMetadata(kv.Key, kv.Value);
        for (int i = 0; i < tensors.Count; i++)
        {
            var (p, type) = tensors[i];
            switch (p.Kind)
            {
                case PlannedKind.Matrix: AddMatrix(w, p, type, seed, i); break;
                case PlannedKind.RouterMatrix: AddMatrix(w, p, GgmlType.F32, seed, i); break;
                case PlannedKind.Norm: AddVector(w, p, 1f, 0.2f, seed, i); break;
                case PlannedKind.Bias: AddVector(w, p, 0f, 0.5f, seed, i); break;
                case PlannedKind.RopeFreqs: AddRopeFreqs(w, p, md, rope ?? new Llama3RopeScaling()); break;
            }
        }
        w.Write(path);
    }

    private static void AddRopeFreqs(GgufWriter w, PlannedTensor p, List<KeyValuePair<string, GgufValue>> md, Llama3RopeScaling rope)
    {
        string arch = md.First(kv => kv.Key == "general.architecture").Value.ToString();
        float theta = (float)(md.FirstOrDefault(kv => kv.Key == $"{arch}.rope.freq_base").Value?.AsDouble() ?? 10000);
        var v = rope.Divisors(checked((int)p.Shape[0] * 2), theta);
        var bytes = new byte[v.Length * sizeof(float)];
        Buffer.BlockCopy(v, 0, bytes, 0, bytes.Length);
        w.AddTensor(p.Name, GgmlType.F32, p.Shape, bytes);
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
        string bos = tiny.Tokens[tiny.BosId!.Value], eos = tiny.Tokens[tiny.EosId!.Value];
        return tiny with
        {
            Tokens = tokens.ToArray(),
            TokenTypes = types.ToArray(),
            BosId = ids[bos],
            EosId = ids[eos],
            PadId = tiny.PadId is int p ? ids.GetValueOrDefault(tiny.Tokens[p], ids[eos]) : null,
        };
    }

    /// <summary>
    /// Values quantized per tensor, at most, for types whose reference quantizer is slow: a larger tensor repeats a
    /// pool of this many values' worth of distinct random rows (tiny test models stay fully random). 2^20 values keep
    /// a 30 GB K-quant file at the disk's write speed (8192 rows of 7168 values took the quantizer minutes per expert
    /// tensor on 2 busy cores).
    /// </summary>
    public const long DistinctSlowValues = 1 << 20;

    private static void AddMatrix(GgufWriter w, PlannedTensor p, GgmlType type, ulong seed, int index)
    {
        int cols = checked((int)p.Shape[0]);
        long rows = p.Elements / cols;
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        float scale = 1.0f / MathF.Sqrt(cols) * 1.7f; // uniform(-a, a) has std a/√3: weights std ≈ 1/√cols
        // the K-quant and legacy reference quantizers search for scales and are slow; multi-GB benchmark files of
        // those types repeat a pool of distinct random rows (the layout and the bytes read per token are what matter)
        bool fastType = type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0;
        long distinct = fastType ? rows : Math.Min(rows, Math.Max(1, DistinctSlowValues / cols));
        // the IQ types that need an importance matrix get every column equally important
        var format = QuantFormats.IsSupported(type) ? QuantFormats.Get(type) : null;
        float[]? importance = format is { RequiresImportance: true } ? Enumerable.Repeat(1f, cols).ToArray() : null;

        w.AddTensor(p.Name, type, p.Shape, stream =>
        {
            byte[]? pool = distinct == rows ? null : QuantizeRows(0, (int)distinct);
            const int rowsPerChunk = 256;
            for (long r0 = 0; r0 < rows; r0 += rowsPerChunk)
            {
                int n = (int)Math.Min(rowsPerChunk, rows - r0);
                if (pool is null)
                {
                    stream.Write(QuantizeRows(r0, n));
                    continue;
                }
                for (int i = 0; i < n; i++)
                    stream.Write(pool, (int)((r0 + i) % distinct * rowBytes), (int)rowBytes);
            }
        });

        byte[] QuantizeRows(long first, int n)
        {
            var chunk = new byte[rowBytes * n];
            Parallel.For(0, n, () => new float[cols], (i, _, buf) =>
            {
                var rng = new Xoshiro256(Mix(seed, (ulong)index, (ulong)(first + i)));
                for (int c = 0; c < cols; c++) buf[c] = rng.NextSignedFloat() * scale;
                var dst = chunk.AsSpan((int)(i * rowBytes), (int)rowBytes);
                if (format is null) Quantization.QuantizeRow(type, buf, dst);
                else format.Quantize(buf, dst, importance);
                return buf;
            }, _ => { });
            return chunk;
        }
    }

    private static void AddVector(GgufWriter w, PlannedTensor p, float center, float spread, ulong seed, int index)
    {
        var rng = new Xoshiro256(Mix(seed, (ulong)index, 0));
        int n = checked((int)p.Elements);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = center + spread * rng.NextSignedFloat();
        var bytes = new byte[n * sizeof(float)];
        Buffer.BlockCopy(v, 0, bytes, 0, bytes.Length);
        w.AddTensor(p.Name, GgmlType.F32, p.Shape, bytes);
    }

    private static ulong Mix(ulong seed, ulong a, ulong b) => seed * 0x9E3779B97F4A7C15UL ^ (a + 1) * 0xBF58476D1CE4E5B9UL ^ (b + 1) * 0x94D049BB133111EBUL;
}
