// Converts a Hugging Face checkpoint (config.json, tokenizer files, safetensors in BF16/F16/F32 or DeepSeek's block-
// scaled FP8) to the GGUF llama.cpp's convert_hf_to_gguf.py writes: the same tensor names, shapes, types and metadata.
// Tensor by tensor, rows are read from the mapped shards, rearranged (Llama Q/K permutation, MLA kv_b split, expert
// stacking), quantized to the target type in parallel and streamed to the output; each tensor's pages are dropped
// once written, so memory stays at a few tensors whatever the model size.
using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Conversion;

/// <summary>Options of a conversion.</summary>
/// <param name="Mtp">deepseek2: keep the multi-token-prediction layer as blk.N.nextn.* (llama.cpp's converter drops it).</param>
public sealed record ConvertOptions(QuantizeTarget Target, bool Mtp = true);

/// <summary>What a conversion wrote.</summary>
public sealed record ConvertResult(string Architecture, int Tensors, long InputBytes, long OutputBytes, string Pre, string? Warning, int MtpLayers);

public static partial class HfConverter
{
    /// <summary>The Hugging Face architectures converted, and the GGUF architecture each becomes.</summary>
    public static readonly IReadOnlyDictionary<string, string> Architectures = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["Qwen2ForCausalLM"] = "qwen2",
        ["LlamaForCausalLM"] = "llama",
        ["DeepseekV3ForCausalLM"] = "deepseek2",
        ["DeepseekV2ForCausalLM"] = "deepseek2",
    };

    private sealed record Output(string Name, long[] Ne, GgmlType Type, IRowSource Source);

    /// <summary>
    /// Converts the checkpoint in <paramref name="dir"/> to <paramref name="outPath"/> (written to a temporary file
    /// beside it and renamed at the end). <paramref name="progress"/> hears (input bytes done, input bytes in all, tensor).
    /// </summary>
    public static ConvertResult Convert(string dir, string outPath, ConvertOptions options, IProgress<(long Done, long Total, string Name)>? progress = null)
    {
        using var cp = HfCheckpoint.Open(dir);
        var cfg = new Config(cp.Config, Path.Combine(dir, "config.json"));
        string hfArch = cfg.Architecture();
        if (!Architectures.TryGetValue(hfArch, out string? arch))
            throw new CheckpointException($"{cfg.Path}: architecture {hfArch} is not supported (supported: {string.Join(", ", Architectures.Keys)})");

        var plan = arch == "deepseek2" ? PlanDeepSeek(cp, cfg, options) : PlanDense(cp, cfg, arch);
        var vocab = HfVocab.Load(dir, cp.Config, addSpacePrefix: arch == "llama");
        int blocks = plan.Blocks;

        var w = new GgufWriter();
        var md = new List<KeyValuePair<string, GgufValue>>();
        void Set(string key, GgufValue v)
        {
            int i = md.FindIndex(kv => kv.Key == key);
            if (i >= 0) md[i] = new(key, v);
            else md.Add(new(key, v));
        }

        // general.*: as gguf-py's Metadata without a model card (names from _name_or_path or the folder).
        var outputs = plan.Outputs.Select(o => o with { Type = TypeFor(o, options.Target, plan, blocks) }).ToList();
        var (total, shared, expert, experts) = ParameterCount(outputs);
        var name = HfModelName.Derive(cfg.OptString("_name_or_path"), new DirectoryInfo(Path.GetFullPath(dir)).Name, total, shared, expert, experts);
        Set("general.architecture", GgufValue.Of(arch));
        Set("general.type", GgufValue.Of("model"));
        using (var gen = HfCheckpoint.ReadJson(Path.Combine(dir, "generation_config.json"), required: false))
            if (gen?.RootElement is { ValueKind: JsonValueKind.Object } g)
            {
                if (g.TryGetProperty("top_k", out var k) && k.TryGetInt32(out int topK)) Set("general.sampling.top_k", GgufValue.Of(topK));
                if (g.TryGetProperty("top_p", out var p) && p.ValueKind == JsonValueKind.Number) Set("general.sampling.top_p", GgufValue.Of((float)p.GetDouble()));
                if (g.TryGetProperty("min_p", out var mp) && mp.ValueKind == JsonValueKind.Number) Set("general.sampling.min_p", GgufValue.Of((float)mp.GetDouble()));
                if (g.TryGetProperty("temperature", out var t) && t.ValueKind == JsonValueKind.Number) Set("general.sampling.temp", GgufValue.Of((float)t.GetDouble()));
            }
        Set("general.name", GgufValue.Of(name.Name));
        if (name.Version is not null) Set("general.version", GgufValue.Of(name.Version));
        if (name.Organization is not null) Set("general.organization", GgufValue.Of(name.Organization));
        if (name.Finetune is not null) Set("general.finetune", GgufValue.Of(name.Finetune));
        if (name.Basename is not null) Set("general.basename", GgufValue.Of(name.Basename));
        if (name.SizeLabel is not null) Set("general.size_label", GgufValue.Of(name.SizeLabel));
        foreach (var kv in ModelKeys(cfg, arch, plan, options.Target)) Set(kv.Key, kv.Value);
        Set("general.quantization_version", GgufValue.Of(2u));
        foreach (var kv in vocab.Metadata) Set(kv.Key, kv.Value);
        foreach (var kv in md) w.SetMetadata(kv.Key, kv.Value);

        long inputBytes = outputs.Sum(o => o.Source.Inputs.Sum(i => i.Info.ByteSize));
        long done = 0;
        foreach (var o in outputs) AddTensor(w, o, bytes => progress?.Report((done += bytes, inputBytes, o.Name)));
        w.Write(outPath);
        return new ConvertResult(arch, outputs.Count, inputBytes, new FileInfo(outPath).Length, vocab.Data.Pre, vocab.Warning, plan.MtpLayers);
    }

    /// <summary>llama.cpp's choice of type: 1-D tensors, norms, biases and the MoE router in F32; weights in the
    /// target type (with `quantize`'s rules for the k-quant mixes and llama.cpp's fallback for rows that are not
    /// whole blocks).</summary>
    private static GgmlType TypeFor(Output o, QuantizeTarget target, Plan plan, int blocks)
    {
        if (o.Ne.Length <= 1 || o.Name.EndsWith("_norm.weight", StringComparison.Ordinal) || !o.Name.EndsWith(".weight", StringComparison.Ordinal)
            || o.Name.Contains("ffn_gate_inp.", StringComparison.Ordinal))
            return GgmlType.F32;
        return ModelQuantizer.TypeFor(target, new GgufTensorInfo(o.Name, o.Ne, GgmlType.F32, 0), plan.HasOutput, blocks);
    }

    /// <summary>gguf-py's parameter count: every element, experts counted once per expert for the size label.</summary>
    private static (long Total, long Shared, long Expert, int ExpertCount) ParameterCount(List<Output> outputs)
    {
        long total = 0, shared = 0, expert = 0, expertSum = 0, expertTensors = 0;
        foreach (var o in outputs)
        {
            long size = o.Ne.Aggregate(1L, (a, b) => a * b);
            if (o.Name.Contains("_exps.", StringComparison.Ordinal) && o.Ne.Length >= 3)
            {
                long count = o.Ne[2];
                expert += size / count;
                expertSum += count;
                expertTensors++;
            }
            else shared += size;
            total += size;
        }
        return (total, shared, expert, expertTensors > 0 ? (int)(expertSum / expertTensors) : 0);
    }

    private static unsafe void AddTensor(GgufWriter w, Output o, Action<long> reportBytes)
    {
        var src = o.Source;
        var type = o.Type;
        w.AddTensor(o.Name, type, o.Ne, stream =>
        {
            int cols = src.Cols;
            long rows = src.Rows;
            long outRow = GgmlTypeInfo.RowBytes(type, cols);
            long inputBytes = src.Inputs.Sum(i => i.Info.ByteSize);
            // chunks of about 4 MB of output, rows split across the cores
            int chunkRows = (int)Math.Clamp((4L << 20) / Math.Max(outRow, 1), 1, rows);
            var chunk = new byte[chunkRows * outRow];
            long reported = 0;
            for (long r0 = 0; r0 < rows; r0 += chunkRows)
            {
                int n = (int)Math.Min(chunkRows, rows - r0);
                long first = r0;
                int grain = Math.Max(1, n / (Environment.ProcessorCount * 4));
                Parallel.ForEach(Partitioner.Create(0, n, grain), () => new float[cols], (range, _, buf) =>
                {
                    for (int i = range.Item1; i < range.Item2; i++)
                    {
                        src.Read(first + i, buf);
                        Quantization.QuantizeRow(type, buf, chunk.AsSpan((int)(i * outRow), (int)outRow));
                    }
                    return buf;
                }, _ => { });
                stream.Write(chunk, 0, (int)(n * outRow));
                src.Written(r0 + n);
                long now = inputBytes * (r0 + n) / rows;
                reportBytes(now - reported);
                reported = now;
            }
            foreach (var t in src.Inputs) t.Release();
        });
    }

    private sealed class Plan
    {
        public List<Output> Outputs { get; } = [];
        public bool HasOutput { get; set; }
        public int Blocks { get; set; }
        public int MtpLayers { get; set; }
    }

    // ---------------------------------------------------------------- llama, qwen2

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerName();

    private static Plan PlanDense(HfCheckpoint cp, Config cfg, string arch)
    {
        int dim = cfg.Int("hidden_size"), layers = cfg.Int("num_hidden_layers"), heads = cfg.Int("num_attention_heads");
        int kvHeads = cfg.OptInt("num_key_value_heads") ?? heads, ffn = cfg.Int("intermediate_size"), vocab = cfg.Int("vocab_size");
        int headDim = cfg.OptInt("head_dim") ?? dim / heads;
        bool llama = arch == "llama";
        var plan = new Plan { Blocks = layers };

        if (llama && cfg.RopeType() == "llama3") plan.Outputs.Add(new("rope_freqs.weight", [headDim / 2], GgmlType.F32, new ConstantRow(Llama3RopeFactors(cfg, headDim))));
        foreach (string hfName in OrderedNames(cp))
        {
            if (hfName.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)) continue;
            var (file, info) = cp.Get(hfName);
            HfTensor T(params long[] shape) => Open(cp, hfName, shape);
            switch (hfName)
            {
                case "model.embed_tokens.weight": Add(plan, "token_embd.weight", T(vocab, dim)); continue;
                case "model.norm.weight": Add(plan, "output_norm.weight", T(dim)); continue;
                case "lm_head.weight": Add(plan, "output.weight", T(vocab, dim)); plan.HasOutput = true; continue;
            }
            var m = LayerName().Match(hfName);
            int l = m.Success && int.TryParse(m.Groups[1].ValueSpan, out int li) && li < layers ? li : -1;
            if (l < 0) throw Unmapped(file, hfName);
            string b = $"blk.{l}.";
            switch (m.Groups[2].Value)
            {
                case "input_layernorm.weight": Add(plan, b + "attn_norm.weight", T(dim)); break;
                case "post_attention_layernorm.weight": Add(plan, b + "ffn_norm.weight", T(dim)); break;
                case "self_attn.q_proj.weight": Add(plan, b + "attn_q.weight", llama ? new PermutedRows(T(heads * headDim, dim), heads) : T(heads * headDim, dim)); break;
                case "self_attn.k_proj.weight": Add(plan, b + "attn_k.weight", llama ? new PermutedRows(T(kvHeads * headDim, dim), kvHeads) : T(kvHeads * headDim, dim)); break;
                case "self_attn.v_proj.weight": Add(plan, b + "attn_v.weight", T(kvHeads * headDim, dim)); break;
                case "self_attn.o_proj.weight": Add(plan, b + "attn_output.weight", T(dim, heads * headDim)); break;
                case "self_attn.q_proj.bias": Add(plan, b + "attn_q.bias", llama ? new PermutedVector(T(heads * headDim), heads) : T(heads * headDim)); break;
                case "self_attn.k_proj.bias": Add(plan, b + "attn_k.bias", llama ? new PermutedVector(T(kvHeads * headDim), kvHeads) : T(kvHeads * headDim)); break;
                case "self_attn.v_proj.bias": Add(plan, b + "attn_v.bias", T(kvHeads * headDim)); break;
                case "self_attn.o_proj.bias": Add(plan, b + "attn_output.bias", T(dim)); break;
                case "mlp.gate_proj.weight": Add(plan, b + "ffn_gate.weight", T(ffn, dim)); break;
                case "mlp.up_proj.weight": Add(plan, b + "ffn_up.weight", T(ffn, dim)); break;
                case "mlp.down_proj.weight": Add(plan, b + "ffn_down.weight", T(dim, ffn)); break;
                default: throw Unmapped(file, hfName);
            }
        }
        return plan;
    }

    /// <summary>Llama 3.1's RoPE scaling as per-frequency divisors (the rope_freqs tensor), in F32 as the reference computes them.</summary>
    private static float[] Llama3RopeFactors(Config cfg, int headDim)
    {
        var rp = cfg.RopeParameters();
        float theta = (float)(rp.OptDouble("rope_theta") ?? cfg.OptDouble("rope_theta") ?? 10000.0);
        float factor = (float)(rp.OptDouble("factor") ?? 8.0), low = (float)(rp.OptDouble("low_freq_factor") ?? 1.0), high = (float)(rp.OptDouble("high_freq_factor") ?? 4.0);
        float oldCtx = (float)(rp.OptDouble("original_max_position_embeddings") ?? 8192);
        float lowWavelen = oldCtx / low, highWavelen = oldCtx / high;
        var f = new float[headDim / 2];
        for (int i = 0; i < f.Length; i++)
        {
            float freq = 1.0f / MathF.Pow(theta, 2 * i / (float)headDim);
            float wavelen = 2 * MathF.PI / freq;
            if (wavelen < highWavelen) f[i] = 1;
            else if (wavelen > lowWavelen) f[i] = factor;
            else
            {
                float smooth = (oldCtx / wavelen - low) / (high - low);
                f[i] = 1 / ((1 - smooth) / factor + smooth);
            }
        }
        return f;
    }

    // ---------------------------------------------------------------- deepseek2

    private static Plan PlanDeepSeek(HfCheckpoint cp, Config cfg, ConvertOptions options)
    {
        int dim = cfg.Int("hidden_size"), layers = cfg.Int("num_hidden_layers"), heads = cfg.Int("num_attention_heads");
        int vocab = cfg.Int("vocab_size"), ffn = cfg.Int("intermediate_size");
        int qLora = cfg.OptInt("q_lora_rank") ?? 0, kvLora = cfg.OptInt("kv_lora_rank") ?? 512;
        int nope = cfg.Int("qk_nope_head_dim"), rope = cfg.Int("qk_rope_head_dim"), v = cfg.Int("v_head_dim");
        int experts = cfg.OptInt("n_routed_experts") ?? 0, moeFfn = cfg.OptInt("moe_intermediate_size") ?? ffn;
        int shared = cfg.OptInt("n_shared_experts") ?? 0;
        int mtp = cfg.OptInt("num_nextn_predict_layers") ?? 0;
        int keep = options.Mtp ? mtp : 0;
        var plan = new Plan { Blocks = layers + keep, MtpLayers = keep };
        var pendingExperts = new Dictionary<int, Dictionary<string, HfTensor>>();

        foreach (string hfName in OrderedNames(cp))
        {
            if (hfName.EndsWith("_scale_inv", StringComparison.Ordinal) || hfName.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)) continue;
            var (file, _) = cp.Get(hfName);
            HfTensor T(params long[] shape) => Open(cp, hfName, shape);
            switch (hfName)
            {
                case "model.embed_tokens.weight": Add(plan, "token_embd.weight", T(vocab, dim)); continue;
                case "model.norm.weight": Add(plan, "output_norm.weight", T(dim)); continue;
                case "lm_head.weight":
                    if (cfg.OptBool("tie_word_embeddings") == true) continue;
                    Add(plan, "output.weight", T(vocab, dim));
                    plan.HasOutput = true;
                    continue;
            }
            var m = LayerName().Match(hfName);
            int l = m.Success && int.TryParse(m.Groups[1].ValueSpan, out int li) && li < layers + mtp ? li : -1;
            if (l < 0) throw Unmapped(file, hfName);
            if (l >= layers + keep) continue; // the MTP layer, when not kept
            string b = $"blk.{l}.", rest = m.Groups[2].Value;
            bool dense = l < (cfg.OptInt("first_k_dense_replace") ?? (experts > 0 ? 0 : layers)) || experts == 0;
            switch (rest)
            {
                case "input_layernorm.weight": Add(plan, b + "attn_norm.weight", T(dim)); continue;
                case "post_attention_layernorm.weight": Add(plan, b + "ffn_norm.weight", T(dim)); continue;
                case "self_attn.q_proj.weight": Add(plan, b + "attn_q.weight", T(heads * (nope + rope), dim)); continue;
                case "self_attn.q_a_proj.weight": Add(plan, b + "attn_q_a.weight", T(qLora, dim)); continue;
                case "self_attn.q_a_layernorm.weight": Add(plan, b + "attn_q_a_norm.weight", T(qLora)); continue;
                case "self_attn.q_b_proj.weight": Add(plan, b + "attn_q_b.weight", T(heads * (nope + rope), qLora)); continue;
                case "self_attn.kv_a_proj_with_mqa.weight": Add(plan, b + "attn_kv_a_mqa.weight", T(kvLora + rope, dim)); continue;
                case "self_attn.kv_a_layernorm.weight": Add(plan, b + "attn_kv_a_norm.weight", T(kvLora)); continue;
                case "self_attn.kv_b_proj.weight":
                {
                    var kvB = T(heads * (nope + v), kvLora);
                    plan.Outputs.Add(new(b + "attn_k_b.weight", [nope, kvLora, heads], GgmlType.F32, new KvBSplit(kvB, heads, nope, v, keys: true)));
                    plan.Outputs.Add(new(b + "attn_v_b.weight", [kvLora, v, heads], GgmlType.F32, new KvBSplit(kvB, heads, nope, v, keys: false)));
                    continue;
                }
                case "self_attn.o_proj.weight": Add(plan, b + "attn_output.weight", T(dim, heads * v)); continue;
                case "mlp.gate.weight" when !dense: Add(plan, b + "ffn_gate_inp.weight", T(experts, dim)); continue;
                case "mlp.gate.e_score_correction_bias" when !dense: Add(plan, b + "exp_probs_b.bias", T(experts)); continue;
                case "mlp.gate_proj.weight" when dense: Add(plan, b + "ffn_gate.weight", T(ffn, dim)); continue;
                case "mlp.up_proj.weight" when dense: Add(plan, b + "ffn_up.weight", T(ffn, dim)); continue;
                case "mlp.down_proj.weight" when dense: Add(plan, b + "ffn_down.weight", T(dim, ffn)); continue;
                case "mlp.shared_experts.gate_proj.weight" when !dense: Add(plan, b + "ffn_gate_shexp.weight", T(moeFfn * shared, dim)); continue;
                case "mlp.shared_experts.up_proj.weight" when !dense: Add(plan, b + "ffn_up_shexp.weight", T(moeFfn * shared, dim)); continue;
                case "mlp.shared_experts.down_proj.weight" when !dense: Add(plan, b + "ffn_down_shexp.weight", T(dim, moeFfn * shared)); continue;
                case "embed_tokens.weight" when l >= layers: Add(plan, b + "nextn.embed_tokens.weight", T(vocab, dim)); continue;
                case "enorm.weight" when l >= layers: Add(plan, b + "nextn.enorm.weight", T(dim)); continue;
                case "hnorm.weight" when l >= layers: Add(plan, b + "nextn.hnorm.weight", T(dim)); continue;
                case "eh_proj.weight" when l >= layers: Add(plan, b + "nextn.eh_proj.weight", T(dim, 2 * dim)); continue;
                case "shared_head.norm.weight" when l >= layers: Add(plan, b + "nextn.shared_head_norm.weight", T(dim)); continue;
                case "shared_head.head.weight" when l >= layers: Add(plan, b + "nextn.shared_head_head.weight", T(vocab, dim)); continue;
            }
            var em = ExpertName().Match(rest);
            if (!em.Success || dense || !int.TryParse(em.Groups[1].ValueSpan, out int e) || e >= experts) throw Unmapped(file, hfName);
            string proj = em.Groups[2].Value;
            var layer = pendingExperts.TryGetValue(l, out var d) ? d : pendingExperts[l] = new(StringComparer.Ordinal);
            layer[$"{e}.{proj}"] = T(proj == "down_proj" ? [dim, moeFfn] : [moeFfn, dim]);
            if (layer.Count < 3 * experts) continue;
            // the layer's experts are all read: stacked as the reference stacks them (down, gate, up), ne[2] = expert
            foreach (var (p, g) in new[] { ("down_proj", "ffn_down_exps"), ("gate_proj", "ffn_gate_exps"), ("up_proj", "ffn_up_exps") })
            {
                var parts = Enumerable.Range(0, experts).Select(x => (IRowSource)layer[$"{x}.{p}"]).ToList();
                plan.Outputs.Add(new($"{b}{g}.weight", [parts[0].Cols, parts[0].Rows, experts], GgmlType.F32, new StackedRows(parts)));
            }
            pendingExperts.Remove(l);
        }
        if (pendingExperts.Count > 0)
        {
            var (l, got) = pendingExperts.First();
            throw new CheckpointException($"{cp.Directory}: layer {l} has {got.Count} of its {3 * experts} expert tensors (incomplete checkpoint?)");
        }
        return plan;
    }

    [GeneratedRegex(@"^mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")]
    private static partial Regex ExpertName();

    // ---------------------------------------------------------------- shared

    /// <summary>Checkpoint tensors in the reference converter's order: shard by shard, names sorted within each.</summary>
    private static IEnumerable<string> OrderedNames(HfCheckpoint cp) =>
        cp.TensorNames.GroupBy(n => cp.Get(n).File.Path).OrderBy(g => Path.GetFileName(g.Key), StringComparer.Ordinal)
            .SelectMany(g => g.Order(StringComparer.Ordinal));

    private static CheckpointException Unmapped(SafetensorsFile file, string name) =>
        new($"{file.Path}: tensor {name} is not part of the architecture (cannot map it to a GGUF name)");

    /// <summary>The checkpoint tensor <paramref name="name"/>, checked to have the shape config.json implies;
    /// an FP8 tensor comes with its block scale.</summary>
    private static HfTensor Open(HfCheckpoint cp, string name, long[] shape)
    {
        var (file, info) = cp.Get(name);
        if (!info.Shape.SequenceEqual(shape))
            throw new CheckpointException($"{file.Path}: tensor {name} is [{string.Join(", ", info.Shape)}], config.json implies [{string.Join(", ", shape)}]");
        HfTensor? scale = null;
        int[]? block = null;
        if (cp.Find(name + "_scale_inv") is var (sf, si))
        {
            scale = new HfTensor(name + "_scale_inv", sf, si);
            block = BlockSize(cp.Config);
        }
        return new HfTensor(name, file, info, scale, block);
    }

    private static int[]? BlockSize(JsonElement config) =>
        config.TryGetProperty("quantization_config", out var q) && q.ValueKind == JsonValueKind.Object
        && q.TryGetProperty("weight_block_size", out var b) && b.ValueKind == JsonValueKind.Array
            ? b.EnumerateArray().Select(x => x.GetInt32()).ToArray() : null;

    private static void Add(Plan plan, string name, IRowSource src)
    {
        // GGUF's ne is the PyTorch shape reversed: [out, in] becomes {in, out}
        long[] ne = src switch
        {
            HfTensor t => t.Shape.Reverse().ToArray(),
            PermutedVector or ConstantRow => [src.Cols],
            _ => [src.Cols, src.Rows],
        };
        plan.Outputs.Add(new(name, ne, GgmlType.F32, src));
    }

    /// <summary>The {arch}.* keys and general.file_type, in the reference converter's order.</summary>
    private static IEnumerable<KeyValuePair<string, GgufValue>> ModelKeys(Config cfg, string arch, Plan plan, QuantizeTarget target)
    {
        var keys = new List<KeyValuePair<string, GgufValue>>();
        void U(string key, int v) => keys.Add(new($"{arch}.{key}", GgufValue.Of((uint)v)));
        void F(string key, double v) => keys.Add(new($"{arch}.{key}", GgufValue.Of((float)v)));
        bool ds = arch == "deepseek2";

        U("block_count", plan.Blocks);
        if (cfg.OptInt("max_position_embeddings") is int ctx) U("context_length", ctx);
        U("embedding_length", cfg.Int("hidden_size"));
        if (cfg.OptInt("intermediate_size") is int ffn) U("feed_forward_length", ffn);
        U("attention.head_count", cfg.Int("num_attention_heads"));
        if (ds) U("attention.head_count_kv", 1);
        else if (cfg.OptInt("num_key_value_heads") is int kv) U("attention.head_count_kv", kv);
        var rp = cfg.RopeParameters();
        string? ropeType = cfg.RopeType();
        if (ropeType == "linear" && rp.OptDouble("factor") is double lf)
        {
            keys.Add(new($"{arch}.rope.scaling.type", GgufValue.Of("linear")));
            F("rope.scaling.factor", lf);
        }
        else if (ropeType == "yarn" && rp.OptDouble("factor") is double yf)
        {
            keys.Add(new($"{arch}.rope.scaling.type", GgufValue.Of("yarn")));
            F("rope.scaling.factor", yf);
            U("rope.scaling.original_context_length", rp.Int("original_max_position_embeddings"));
            if (rp.OptDouble("extrapolation_factor") is double ext) F("rope.scaling.yarn_ext_factor", ext);
            if ((rp.OptDouble("attention_factor") ?? rp.OptDouble("attn_factor")) is double af) F("rope.scaling.yarn_attn_factor", af);
            if (rp.OptDouble("beta_fast") is double bf) F("rope.scaling.yarn_beta_fast", bf);
            if (rp.OptDouble("beta_slow") is double bs) F("rope.scaling.yarn_beta_slow", bs);
        }
        if ((rp.OptDouble("rope_theta") ?? cfg.OptDouble("rope_theta")) is double theta) F("rope.freq_base", theta);
        if ((cfg.OptDouble("rms_norm_eps") ?? (ds ? 1e-6 : null)) is double eps) F("attention.layer_norm_rms_epsilon", eps);
        if (cfg.OptInt("n_routed_experts") is int ne) U("expert_count", ne);
        if (cfg.OptInt("num_experts_per_tok") is int nu) U("expert_used_count", nu);
        if (cfg.OptInt("n_group") is int ng) U("expert_group_count", ng);
        if (cfg.OptInt("topk_group") is int tg) U("expert_group_used_count", tg);
        if (cfg.OptString("scoring_func") is string sf)
            U("expert_gating_func", sf switch
            {
                "sigmoid" => (int)ExpertGating.Sigmoid,
                "softmax" => (int)ExpertGating.Softmax,
                _ => throw new CheckpointException($"{cfg.Path}: scoring_func '{sf}' is not supported (sigmoid, softmax)"),
            });
        if (cfg.OptInt("head_dim") is int hd)
        {
            U("attention.key_length", hd);
            U("attention.value_length", hd);
        }
        keys.Add(new("general.file_type", GgufValue.Of((uint)target.FileType)));

        if (arch == "llama")
        {
            U("vocab_size", cfg.Int("vocab_size"));
            U("rope.dimension_count", cfg.OptInt("head_dim") ?? cfg.Int("hidden_size") / cfg.Int("num_attention_heads"));
        }
        else if (ds)
        {
            int experts = cfg.OptInt("n_routed_experts") ?? 0;
            U("leading_dense_block_count", cfg.OptInt("first_k_dense_replace") ?? (experts > 0 ? 0 : cfg.Int("num_hidden_layers")));
            int kvLora = cfg.OptInt("kv_lora_rank") ?? 512, rope = cfg.Int("qk_rope_head_dim");
            U("vocab_size", cfg.Int("vocab_size"));
            if (cfg.OptInt("q_lora_rank") is int ql) U("attention.q_lora_rank", ql);
            U("attention.kv_lora_rank", kvLora);
            U("attention.key_length", kvLora + rope);
            U("attention.value_length", kvLora);
            U("attention.key_length_mla", cfg.Int("qk_nope_head_dim") + rope);
            U("attention.value_length_mla", cfg.Int("v_head_dim"));
            U("expert_feed_forward_length", cfg.OptInt("moe_intermediate_size") ?? cfg.Int("intermediate_size"));
            if (experts > 0) U("expert_count", experts);
            U("expert_shared_count", cfg.OptInt("n_shared_experts") ?? 0);
            if (cfg.OptDouble("routed_scaling_factor") is double rs) F("expert_weights_scale", rs);
            if (cfg.OptBool("norm_topk_prob") == true) keys.Add(new($"{arch}.expert_weights_norm", GgufValue.Of(true)));
            U("rope.dimension_count", rope);
            if (rp.OptDouble("mscale_all_dim") is double mad) F("rope.scaling.yarn_log_multiplier", 0.1 * mad);
            if (plan.MtpLayers > 0) U("nextn_predict_layers", plan.MtpLayers);
        }
        return keys;
    }

    /// <summary>config.json with one-line errors naming the file and the key.</summary>
    private sealed class Config(JsonElement root, string path)
    {
        public string Path => path;

        public string Architecture() =>
            root.TryGetProperty("architectures", out var a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0 && a[0].GetString() is string s
                ? s : throw new CheckpointException($"{path}: no architectures list");

        public int Int(string key) => OptInt(key) ?? throw new CheckpointException($"{path}: {key} is missing");

        public int? OptInt(string key) =>
            !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i >= 0 ? i
            : throw new CheckpointException($"{path}: {key} is not a non-negative integer");

        public double? OptDouble(string key) =>
            !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
            : v.ValueKind == JsonValueKind.Number ? v.GetDouble()
            : throw new CheckpointException($"{path}: {key} is not a number");

        public bool? OptBool(string key) =>
            root.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

        public string? OptString(string key) =>
            root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        /// <summary>rope_parameters (newer configs) or rope_scaling, as one object.</summary>
        public Config RopeParameters()
        {
            foreach (string k in new[] { "rope_parameters", "rope_scaling" })
                if (root.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Object) return new Config(v, $"{path} ({k})");
            return new Config(JsonDocument.Parse("{}").RootElement, path);
        }

        public string? RopeType()
        {
            var rp = RopeParameters();
            return (rp.OptString("rope_type") ?? rp.OptString("type"))?.ToLowerInvariant();
        }
    }
}
