// Random-weight Hugging Face checkpoints of the shapes `synth` knows (config.json + safetensors, one file or shards
// with model.safetensors.index.json), as test subjects for `convert`: deterministic for a seed, streamed to disk so a
// multi-GB checkpoint never sits in memory. DeepSeek checkpoints can be written in FP8 with 128×128 block scales, as
// DeepSeek publishes V3/R1; their values are FP8 codes times scales of three significant bits, exact in BF16, so the
// BF16 and FP8 checkpoints of one seed hold the same numbers.
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Sampling;

namespace R1Sharp.Conversion;

public sealed record HfSynthOptions
{
    public ulong Seed { get; init; } = 1;
    /// <summary>deepseek2: linear weights in float8_e4m3fn with weight_scale_inv per 128×128 block.</summary>
    public bool Fp8 { get; init; }
    /// <summary>Shards of at most this many bytes (0: one model.safetensors).</summary>
    public long MaxShardBytes { get; init; }
    /// <summary>Vocabulary size when the spec has none (the tokenizer's).</summary>
    public int VocabSize { get; init; }
}

public static class HfSynthesizer
{
    private const int FpBlock = 128;

    private sealed record Planned(string Name, long[] Shape, PlannedKind Kind, bool Fp8);

    /// <summary>config.json of a model of shape <paramref name="spec"/>.</summary>
    public static JsonObject Config(SynthSpec spec, int vocab, bool fp8)
    {
        var c = new JsonObject();
        switch (spec.Architecture)
        {
            case "qwen2":
                c["architectures"] = new JsonArray("Qwen2ForCausalLM");
                c["model_type"] = "qwen2";
                break;
            case "llama":
                c["architectures"] = new JsonArray("LlamaForCausalLM");
                c["model_type"] = "llama";
                break;
            default:
                // softmax routing is DeepSeek-V2's, sigmoid with a selection bias V3's
                bool v2 = spec.Moe?.Gating == ExpertGating.Softmax;
                c["architectures"] = new JsonArray(v2 ? "DeepseekV2ForCausalLM" : "DeepseekV3ForCausalLM");
                c["model_type"] = v2 ? "deepseek_v2" : "deepseek_v3";
                break;
        }
        c["hidden_size"] = spec.Dim;
        c["intermediate_size"] = spec.FfnDim;
        c["num_hidden_layers"] = spec.Layers;
        c["num_attention_heads"] = spec.Heads;
        c["num_key_value_heads"] = spec.Mla is null ? spec.KvHeads : spec.Heads;
        c["vocab_size"] = vocab;
        c["max_position_embeddings"] = spec.ContextLength;
        c["rms_norm_eps"] = spec.NormEps;
        c["rope_theta"] = spec.RopeTheta;
        c["tie_word_embeddings"] = spec.TiedOutput;
        c["torch_dtype"] = "bfloat16";
        c["hidden_act"] = "silu";
        if (spec.Architecture == "llama")
            c["rope_scaling"] = new JsonObject
            {
                ["factor"] = 8.0, ["high_freq_factor"] = 4.0, ["low_freq_factor"] = 1.0,
                ["original_max_position_embeddings"] = 8192, ["rope_type"] = "llama3",
            };
        if (spec.Mla is { } mla)
        {
            var moe = spec.Moe!;
            c["q_lora_rank"] = mla.QLoraRank > 0 ? mla.QLoraRank : null;
            c["kv_lora_rank"] = mla.KvLoraRank;
            c["qk_nope_head_dim"] = mla.NopeDim;
            c["qk_rope_head_dim"] = mla.RopeDim;
            c["v_head_dim"] = mla.VDim;
            c["n_routed_experts"] = moe.Experts;
            c["num_experts_per_tok"] = moe.ExpertsUsed;
            c["n_shared_experts"] = moe.SharedExperts;
            c["moe_intermediate_size"] = moe.ExpertFfnDim;
            c["first_k_dense_replace"] = moe.LeadingDenseLayers;
            c["n_group"] = moe.Groups;
            c["topk_group"] = moe.GroupsUsed;
            c["routed_scaling_factor"] = moe.WeightsScale;
            c["norm_topk_prob"] = moe.NormalizeWeights;
            c["scoring_func"] = moe.Gating == ExpertGating.Sigmoid ? "sigmoid" : "softmax";
            c["topk_method"] = moe.Gating == ExpertGating.Sigmoid ? "noaux_tc" : "greedy";
            c["num_nextn_predict_layers"] = spec.MtpLayers;
            if (spec.Yarn is { } y)
                c["rope_scaling"] = new JsonObject
                {
                    ["beta_fast"] = y.BetaFast, ["beta_slow"] = y.BetaSlow, ["factor"] = y.Factor,
                    ["mscale"] = y.LogMultiplier / 0.1f, ["mscale_all_dim"] = y.LogMultiplier / 0.1f,
                    ["original_max_position_embeddings"] = y.OriginalContext, ["type"] = "yarn",
                };
            if (fp8)
                c["quantization_config"] = new JsonObject
                {
                    ["activation_scheme"] = "dynamic", ["fmt"] = "e4m3", ["quant_method"] = "fp8",
                    ["weight_block_size"] = new JsonArray(FpBlock, FpBlock),
                };
        }
        return c;
    }

    private static List<Planned> Plan(SynthSpec spec, int vocab, bool fp8)
    {
        var t = new List<Planned>();
        void M(string name, params long[] shape) => t.Add(new(name, shape, PlannedKind.Matrix, fp8));
        void Plain(string name, params long[] shape) => t.Add(new(name, shape, PlannedKind.Matrix, false));
        void N(string name, long n) => t.Add(new(name, [n], PlannedKind.Norm, false));
        void B(string name, long n) => t.Add(new(name, [n], PlannedKind.Bias, false));
        int d = spec.Dim;
        Plain("model.embed_tokens.weight", vocab, d);
        N("model.norm.weight", d);
        if (!spec.TiedOutput) Plain("lm_head.weight", vocab, d);
        if (spec.Mla is not { } mla)
        {
            int hd = d / spec.Heads, q = spec.Heads * hd, kv = spec.KvHeads * hd;
            for (int l = 0; l < spec.Layers; l++)
            {
                string b = $"model.layers.{l}.";
                N(b + "input_layernorm.weight", d);
                N(b + "post_attention_layernorm.weight", d);
                M(b + "self_attn.q_proj.weight", q, d);
                M(b + "self_attn.k_proj.weight", kv, d);
                M(b + "self_attn.v_proj.weight", kv, d);
                if (spec.Architecture == "qwen2")
                {
                    B(b + "self_attn.q_proj.bias", q);
                    B(b + "self_attn.k_proj.bias", kv);
                    B(b + "self_attn.v_proj.bias", kv);
                }
                M(b + "self_attn.o_proj.weight", d, q);
                M(b + "mlp.gate_proj.weight", spec.FfnDim, d);
                M(b + "mlp.up_proj.weight", spec.FfnDim, d);
                M(b + "mlp.down_proj.weight", d, spec.FfnDim);
            }
            return t;
        }
        var moe = spec.Moe!;
        int H = spec.Heads;
        for (int l = 0; l < spec.Layers + spec.MtpLayers; l++)
        {
            string b = $"model.layers.{l}.";
            N(b + "input_layernorm.weight", d);
            N(b + "post_attention_layernorm.weight", d);
            if (mla.QLoraRank > 0)
            {
                M(b + "self_attn.q_a_proj.weight", mla.QLoraRank, d);
                N(b + "self_attn.q_a_layernorm.weight", mla.QLoraRank);
                M(b + "self_attn.q_b_proj.weight", H * mla.QkHeadDim, mla.QLoraRank);
            }
            else M(b + "self_attn.q_proj.weight", H * mla.QkHeadDim, d);
            M(b + "self_attn.kv_a_proj_with_mqa.weight", mla.KvLoraRank + mla.RopeDim, d);
            N(b + "self_attn.kv_a_layernorm.weight", mla.KvLoraRank);
            M(b + "self_attn.kv_b_proj.weight", H * (mla.NopeDim + mla.VDim), mla.KvLoraRank);
            M(b + "self_attn.o_proj.weight", d, H * mla.VDim);
            if (l < moe.LeadingDenseLayers)
            {
                M(b + "mlp.gate_proj.weight", spec.FfnDim, d);
                M(b + "mlp.up_proj.weight", spec.FfnDim, d);
                M(b + "mlp.down_proj.weight", d, spec.FfnDim);
            }
            else
            {
                t.Add(new(b + "mlp.gate.weight", [moe.Experts, d], PlannedKind.RouterMatrix, false));
                if (moe.Gating == ExpertGating.Sigmoid) B(b + "mlp.gate.e_score_correction_bias", moe.Experts);
                for (int e = 0; e < moe.Experts; e++)
                {
                    M(b + $"mlp.experts.{e}.gate_proj.weight", moe.ExpertFfnDim, d);
                    M(b + $"mlp.experts.{e}.up_proj.weight", moe.ExpertFfnDim, d);
                    M(b + $"mlp.experts.{e}.down_proj.weight", d, moe.ExpertFfnDim);
                }
                int sh = moe.SharedExperts * moe.ExpertFfnDim;
                if (sh > 0)
                {
                    M(b + "mlp.shared_experts.gate_proj.weight", sh, d);
                    M(b + "mlp.shared_experts.up_proj.weight", sh, d);
                    M(b + "mlp.shared_experts.down_proj.weight", d, sh);
                }
            }
            if (l >= spec.Layers)
            {
                Plain(b + "embed_tokens.weight", vocab, d);
                N(b + "enorm.weight", d);
                N(b + "hnorm.weight", d);
                M(b + "eh_proj.weight", d, 2L * d);
                N(b + "shared_head.norm.weight", d);
                Plain(b + "shared_head.head.weight", vocab, d);
            }
        }
        return t;
    }

    /// <summary>Writes config.json and the safetensors of a random model of shape <paramref name="spec"/> into
    /// <paramref name="dir"/> (tokenizer files are the caller's).</summary>
    public static void Write(SynthSpec spec, string dir, HfSynthOptions options)
    {
        int vocab = spec.VocabSize > 0 ? spec.VocabSize : options.VocabSize;
        if (vocab <= 0) throw new ArgumentException("the vocabulary size is unknown (give the tokenizer)");
        bool fp8 = options.Fp8 && spec.Mla is not null;
        if (options.Fp8 && !fp8) throw new ArgumentException("FP8 checkpoints are written for deepseek2 only");
        Directory.CreateDirectory(dir);
        var plan = Plan(spec, vocab, spec.Mla is not null);
        File.WriteAllText(Path.Combine(dir, "config.json"), Config(spec, vocab, fp8).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        // Each tensor as written: FP8-eligible ones as codes (+ a scale tensor) or as their exact BF16 values.
        var entries = new List<(string Name, SafetensorsDType DType, long[] Shape, Action<Stream> Write)>();
        for (int i = 0; i < plan.Count; i++)
        {
            var p = plan[i];
            int index = i;
            if (p.Fp8 && fp8)
            {
                long sr = (p.Shape[0] + FpBlock - 1) / FpBlock, sc = (p.Shape[1] + FpBlock - 1) / FpBlock;
                entries.Add((p.Name, SafetensorsDType.F8_E4M3, p.Shape, s => WriteFp8(s, p, options.Seed, index, codes: true)));
                entries.Add((p.Name + "_scale_inv", SafetensorsDType.F32, [sr, sc], s => WriteFp8(s, p, options.Seed, index, codes: false)));
            }
            else entries.Add((p.Name, SafetensorsDType.BF16, p.Shape, s => WriteBf16(s, p, options.Seed, index)));
        }

        // Shards: consecutive tensors up to the size limit each.
        var shards = new List<List<int>> { new() };
        long size = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            long bytes = entries[i].Shape.Aggregate(1L, (a, b) => a * b) * SafetensorsHeader.ElementBytes(entries[i].DType);
            if (options.MaxShardBytes > 0 && size > 0 && size + bytes > options.MaxShardBytes)
            {
                shards.Add([]);
                size = 0;
            }
            shards[^1].Add(i);
            size += bytes;
        }
        var weightMap = new JsonObject();
        for (int s = 0; s < shards.Count; s++)
        {
            string file = shards.Count == 1 ? "model.safetensors" : $"model-{s + 1:00000}-of-{shards.Count:00000}.safetensors";
            var items = shards[s].Select(i => entries[i]).ToList();
            string path = Path.Combine(dir, file);
            using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                fs.Write(SafetensorsHeader.Build(items.Select(e => (e.Name, e.DType, e.Shape)), new Dictionary<string, string> { ["format"] = "pt" }));
                foreach (var e in items) e.Write(fs);
            }
            foreach (var e in items) weightMap[e.Name] = file;
        }
        if (shards.Count > 1)
            File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
                new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = weightMap }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static float Spread(Planned p) => p.Kind switch
    {
        PlannedKind.Norm => 0.2f,
        PlannedKind.Bias => 0.5f,
        _ => 1.7f / MathF.Sqrt(p.Shape[^1]),
    };

    private static void WriteBf16(Stream s, Planned p, ulong seed, int index)
    {
        long cols = p.Shape[^1], rows = p.Shape.Aggregate(1L, (a, b) => a * b) / cols;
        float center = p.Kind == PlannedKind.Norm ? 1f : 0f, spread = Spread(p);
        var rowBytes = new byte[cols * 2];
        var vals = new float[cols];
        for (long r = 0; r < rows; r++)
        {
            if (p.Fp8) Fp8Row(p, seed, index, r, vals, null);
            else
            {
                var rng = new Xoshiro256(Mix(seed, (ulong)index, (ulong)r));
                for (int c = 0; c < cols; c++) vals[c] = center + spread * rng.NextSignedFloat();
            }
            for (int c = 0; c < cols; c++) BitConverter.TryWriteBytes(rowBytes.AsSpan(c * 2), HalfConvert.F32ToBF16(vals[c]));
            s.Write(rowBytes);
        }
    }

    /// <summary>
    /// One row of an FP8-exact matrix: codes drawn at random (finite, not NaN) and block scales s = m·2^k with
    /// m ∈ {1, 1.25, 1.5, 1.75}, so code × scale has at most 7 significant bits and BF16 holds it exactly.
    /// </summary>
    private static void Fp8Row(Planned p, ulong seed, int index, long row, float[]? values, byte[]? codes)
    {
        long cols = p.Shape[1];
        var rng = new Xoshiro256(Mix(seed, (ulong)index, (ulong)row));
        for (int c = 0; c < cols; c++)
        {
            byte code = (byte)(rng.Next() & 0xFF);
            if ((code & 0x7F) == 0x7F) code ^= 1; // NaN
            if (codes is not null) codes[c] = code;
            if (values is not null) values[c] = Fp8E4M3.Table[code] * BlockScale(p, seed, index, row / FpBlock, c / FpBlock);
        }
    }

    private static float BlockScale(Planned p, ulong seed, int index, long br, long bc)
    {
        // the codes span ±448; scales bring weights to about 1/√cols
        ulong h = Mix(seed ^ 0x5CA1E, (ulong)index, (ulong)(br * 1_000_003 + bc));
        float m = 1f + (h & 3) * 0.25f;
        int k = -(int)Math.Round(Math.Log2(448 * Math.Sqrt(p.Shape[1]) / 1.7)) - (int)((h >> 2) & 1);
        return m * MathF.Pow(2, k);
    }

    private static void WriteFp8(Stream s, Planned p, ulong seed, int index, bool codes)
    {
        long rows = p.Shape[0], cols = p.Shape[1];
        if (codes)
        {
            var row = new byte[cols];
            for (long r = 0; r < rows; r++)
            {
                Fp8Row(p, seed, index, r, null, row);
                s.Write(row);
            }
            return;
        }
        long sr = (rows + FpBlock - 1) / FpBlock, sc = (cols + FpBlock - 1) / FpBlock;
        var b = new byte[4];
        for (long i = 0; i < sr; i++)
            for (long j = 0; j < sc; j++)
            {
                BitConverter.TryWriteBytes(b, BlockScale(p, seed, index, i, j));
                s.Write(b);
            }
    }

    /// <summary>Ids in a tokenizer.json (its vocabulary and added tokens): the highest plus one.</summary>
    public static int TokenizerVocabSize(string tokenizerJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJson), new JsonDocumentOptions { MaxDepth = 256 });
        int max = -1;
        foreach (var p in doc.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject()) max = Math.Max(max, p.Value.GetInt32());
        if (doc.RootElement.TryGetProperty("added_tokens", out var added))
            foreach (var a in added.EnumerateArray()) max = Math.Max(max, a.GetProperty("id").GetInt32());
        return max + 1;
    }

    private static ulong Mix(ulong seed, ulong a, ulong b) => seed * 0x9E3779B97F4A7C15UL ^ (a + 1) * 0xBF58476D1CE4E5B9UL ^ (b + 1) * 0x94D049BB133111EBUL;
}
