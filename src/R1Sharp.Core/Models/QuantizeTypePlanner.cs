// llama.cpp's choice of a type for each tensor of a quantized file (llama-quant.cpp: tensor_allows_quantization,
// tensor_get_category, llama_tensor_get_type_impl, tensor_type_fallback), rule for rule. The rules count attn_v,
// ffn_down, ffn_gate and ffn_up tensors as they meet them, in llama.cpp's tensor order (non-layer tensors first, then
// by layer number, by name within a layer), so the plan walks the tensors in that order.
using R1Sharp.Formats;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

internal sealed class TypePlanner
{
    private enum Category { TokenEmbd, AttentionQ, AttentionV, AttentionK, AttentionQkv, AttentionKvB, AttentionOutput, FfnUp, FfnGate, FfnDown, Output, Other }

    // llama.cpp's file types that the rules name
    private const int Q4_0 = 2, Q5_0 = 8, Q2K = 10, Q3KS = 11, Q3KM = 12, Q3KL = 13, Q4KS = 14, Q4KM = 15, Q5KM = 17, Iq2Xxs = 19,
        Iq2Xs = 20, Q2KS = 21, Iq3Xs = 22, Iq3Xxs = 23, Iq1S = 24, Iq4Nl = 25, Iq3S = 26, Iq3M = 27, Iq2S = 28, Iq2M = 29, Iq4Xs = 30,
        Iq1M = 31, Tq1 = 36, Tq2 = 37, Mxfp4Moe = 38;

    private readonly GgufFile _file;
    private readonly QuantizeTarget _target;
    private readonly bool _hasImatrix, _pure;
    private readonly int _nLayer, _nGqa, _nExpert;
    private readonly bool _is70B;
    private int _nAttentionWv, _iAttentionWv, _iFfnDown, _iFfnGate, _iFfnUp;
    private bool _hasTiedEmbeddings = true;

    public TypePlanner(GgufFile file, QuantizeTarget target, bool hasImatrix, bool pure)
    {
        _file = file;
        _target = target;
        _hasImatrix = hasImatrix;
        _pure = pure;
        string arch = file.GetString("general.architecture") ?? "";
        _nLayer = (int)(file.GetInt($"{arch}.block_count") ?? 0);
        long nHead = file.GetInt($"{arch}.attention.head_count") ?? 0;
        long nHeadKv = file.GetInt($"{arch}.attention.head_count_kv") ?? nHead;
        _nGqa = nHeadKv > 0 ? (int)(nHead / nHeadKv) : 0;
        _nExpert = (int)(file.GetInt($"{arch}.expert_count") ?? 0);
        _is70B = arch == "llama" && _nLayer == 80 && nHead != nHeadKv;
    }

    private int FileType => _target.FileType;

    public GgmlType[] Plan()
    {
        var tensors = _file.Tensors;
        var types = tensors.Select(t => t.Type).ToArray();
        foreach (var t in tensors)
        {
            var c = CategoryOf(t.Name);
            if (c is Category.AttentionV or Category.AttentionQkv or Category.AttentionKvB) ++_nAttentionWv;
            if (c == Category.Output) _hasTiedEmbeddings = false;
        }
        var order = Enumerable.Range(0, tensors.Count).ToArray();
        Array.Sort(order, (a, b) => CompareWeightNames(tensors[a].Name, tensors[b].Name));
        foreach (int i in order)
        {
            var t = tensors[i];
            if (AllowsQuantization(t)) types[i] = TypeOf(t);
        }
        return types;
    }

    /// <summary>llama.cpp's weight_name_comparer: by the number in blk.N. (none first), then by name.</summary>
    private static int CompareWeightNames(string a, string b)
    {
        int la = LayerOf(a) ?? -1, lb = LayerOf(b) ?? -1;
        return la != lb ? la.CompareTo(lb) : string.CompareOrdinal(a, b);
    }

    private static int? LayerOf(string name)
    {
        if (!name.StartsWith("blk.", StringComparison.Ordinal)) return null;
        int end = 4;
        while (end < name.Length && char.IsAsciiDigit(name[end])) end++;
        return end > 4 && end < name.Length && name[end] == '.' && int.TryParse(name.AsSpan(4, end - 4), out int i) ? i : null;
    }

    /// <summary>llama.cpp's tensor_allows_quantization (with quantize_output_tensor and without only_copy).</summary>
    public static bool AllowsQuantization(GgufTensorInfo t)
    {
        if (t.Shape.Length < 2) return false;
        string n = t.Name;
        if (!n.EndsWith("weight", StringComparison.Ordinal)) return false;
        string[] never =
        [
            "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
            "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight", "time_mix_first.weight",
            "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
            "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
            "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
            "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd",
            ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
        ];
        foreach (string s in never) if (n.Contains(s, StringComparison.Ordinal)) return false;
        return n is not ("position_embd.weight" or "token_types.weight");
    }

    private static Category CategoryOf(string name)
    {
        if (name == "output.weight") return Category.Output;
        if (name is "token_embd.weight" or "per_layer_token_embd.weight") return Category.TokenEmbd;
        (string Part, Category C)[] parts =
        [
            ("attn_qkv.weight", Category.AttentionQkv), ("attn_kv_b.weight", Category.AttentionKvB), ("attn_v.weight", Category.AttentionV),
            ("attn_k.weight", Category.AttentionK), ("attn_q.weight", Category.AttentionQ), ("attn_output.weight", Category.AttentionOutput),
            ("ffn_up", Category.FfnUp), ("ffn_gate", Category.FfnGate), ("ffn_down", Category.FfnDown),
        ];
        foreach (var (part, c) in parts) if (name.Contains(part, StringComparison.Ordinal)) return c;
        return Category.Other;
    }

    private static bool IsAttnV(Category c) => c is Category.AttentionV or Category.AttentionQkv or Category.AttentionKvB;

    /// <summary>llama_tensor_get_type for a tensor that allows quantization.</summary>
    private GgmlType TypeOf(GgufTensorInfo t)
    {
        var type = _target.Type;
        if (!IsQuantized(type)) return type;
        if (_target.Plain)
        {
            bool head = t.Name == "output.weight" || (_hasTiedEmbeddings && t.Name == "token_embd.weight");
            if (head && type != GgmlType.Q8_0) type = GgmlType.Q6_K;
        }
        else if (!_pure) type = MixType(type, t, CategoryOf(t.Name));
        return Fallback(t, type);
    }

    private static bool IsQuantized(GgmlType t) => t is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16);

    private bool Is(params int[] fileTypes) => fileTypes.Contains(FileType);

    /// <summary>(layer, layers) of an ffn tensor: the counter for dense models, the blk.N. of its name for MoE.</summary>
    private (int Layer, int Layers) LayerInfo(int counter, string name)
    {
        if (_nExpert <= 1) return (counter, _nLayer);
        int layer = LayerOf(name) ?? throw new ArgumentException($"cannot tell the layer of tensor {name}");
        if (layer < 0 || layer >= _nLayer) throw new ArgumentException($"bad layer {layer} for tensor {name}: must be in [0, {_nLayer})");
        return (layer, _nLayer);
    }

    /// <summary>llama_tensor_get_type_impl.</summary>
    private GgmlType MixType(GgmlType type, GgufTensorInfo t, Category c)
    {
        string name = t.Name;
        if (c == Category.Output || (_hasTiedEmbeddings && c == Category.TokenEmbd))
        {
            long nx = t.Shape[0];
            if (Is(Mxfp4Moe)) type = GgmlType.Q8_0;
            else if (nx % GgmlTypeInfo.BlockSize(type) != 0) type = GgmlType.Q8_0;
            else if (Is(Iq2Xxs, Iq2Xs, Iq3Xxs, Iq1S, Iq2S, Iq2M, Iq1M)) type = GgmlType.Q5_K;
            else if (type != GgmlType.Q8_0) type = GgmlType.Q6_K;
        }
        else if (Is(Mxfp4Moe))
        {
            type = t.Shape.Length > 2 && t.Shape[2] > 1 ? GgmlType.MXFP4 : GgmlType.Q8_0;
        }
        else if (c == Category.TokenEmbd)
        {
            if (Is(Iq2Xxs, Iq2Xs, Iq1S, Iq1M)) type = GgmlType.Q2_K;
            else if (Is(Iq2S, Iq2M)) type = GgmlType.IQ3_S;
            else if (Is(Iq3Xxs)) type = GgmlType.IQ3_S;
            else if (Is(Tq1, Tq2)) type = GgmlType.Q4_K;
        }
        else if (Is(Iq2Xxs, Iq2Xs, Iq1S, Iq2S, Iq2M, Iq1M))
        {
            if (IsAttnV(c))
            {
                if (_nGqa >= 4 || _nExpert >= 4) type = GgmlType.Q4_K;
                else type = Is(Iq2S, Iq2M) ? GgmlType.IQ3_S : GgmlType.Q2_K;
                ++_iAttentionWv;
            }
            else if (_nExpert == 8 && c == Category.AttentionK) type = GgmlType.Q4_K;
            else if (c == Category.FfnDown)
            {
                if (_iFfnDown < _nLayer / 8) type = Is(Iq2S, Iq2M) ? GgmlType.IQ3_S : GgmlType.Q2_K;
                ++_iFfnDown;
            }
            else if (c == Category.AttentionOutput)
            {
                if (_nExpert == 8) type = GgmlType.Q5_K;
                else if (Is(Iq1S, Iq1M)) type = GgmlType.IQ2_XXS;
                else if (Is(Iq2S, Iq2M)) type = GgmlType.IQ3_S;
            }
        }
        else if (IsAttnV(c))
        {
            if (Is(Q2K)) type = _nGqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
            else if (Is(Q2KS) && _nGqa >= 4) type = GgmlType.Q4_K;
            else if (Is(Iq3Xxs)) type = _nGqa >= 4 ? GgmlType.Q4_K : !_hasImatrix ? GgmlType.IQ3_S : GgmlType.IQ3_XXS;
            else if (Is(Iq3Xs, Iq3S) && _nGqa >= 4) type = GgmlType.Q4_K;
            else if (Is(Iq3M)) type = GgmlType.Q4_K;
            else if (Is(Q3KM)) type = _iAttentionWv < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
            else if (Is(Q3KL)) type = GgmlType.Q5_K;
            else if (Is(Iq4Nl, Iq4Xs) && _nGqa >= 4) type = GgmlType.Q5_K;
            else if (Is(Q4KM, Q5KM) && ModelQuantizer.UseMoreBits(_iAttentionWv, _nAttentionWv)) type = GgmlType.Q6_K;
            else if (Is(Q4KS) && _iAttentionWv < 4) type = GgmlType.Q5_K;
            // 70B: 8 heads share each attn_v, so it is 8x smaller than attn_q and more bits cost little
            if (_is70B && type is GgmlType.Q3_K or GgmlType.Q4_K) type = GgmlType.Q5_K;
            if (_nExpert == 8) type = GgmlType.Q8_0;
            ++_iAttentionWv;
        }
        else if (c == Category.AttentionK)
        {
            if (_nExpert == 8) type = GgmlType.Q8_0;
            else if (Is(Iq3Xs)) type = GgmlType.IQ3_XXS;
            else if (Is(Iq3Xxs)) type = GgmlType.IQ2_S;
        }
        else if (c == Category.AttentionQ)
        {
            if (Is(Iq3Xs)) type = GgmlType.IQ3_XXS;
            else if (Is(Iq3Xxs)) type = GgmlType.IQ2_S;
        }
        else if (c == Category.FfnDown)
        {
            var (i, n) = LayerInfo(_iFfnDown, name);
            if (Is(Q2K)) type = GgmlType.Q3_K;
            else if (Is(Q2KS)) { if (i < n / 8) type = GgmlType.Q4_K; }
            else if (Is(Iq3Xxs) && !_hasImatrix) type = i < n / 8 ? GgmlType.Q4_K : GgmlType.Q3_K;
            else if (Is(Q3KM)) type = i < n / 16 ? GgmlType.Q5_K : GgmlType.Q4_K;
            else if (Is(Iq3M) && (i < n / 8 || (_nExpert == 8 && ModelQuantizer.UseMoreBits(i, n)))) type = GgmlType.Q4_K;
            else if (Is(Q3KL)) type = GgmlType.Q5_K;
            else if (Is(Q4KM)) { if (ModelQuantizer.UseMoreBits(i, n)) type = GgmlType.Q6_K; }
            else if (i < n / 8 && Is(Iq4Nl, Iq4Xs) && !_hasImatrix) type = GgmlType.Q5_K;
            else if (Is(Q5KM) && ModelQuantizer.UseMoreBits(i, n)) type = GgmlType.Q6_K;
            else if (Is(Q4KS) && i < n / 8) type = GgmlType.Q5_K;
            else if (Is(Q4_0, Q5_0) && _hasImatrix && i < n / 8) type = Is(Q4_0) ? GgmlType.Q4_1 : GgmlType.Q5_1;
            ++_iFfnDown;
        }
        else if (c == Category.AttentionOutput)
        {
            if (_nExpert == 8)
            {
                if (Is(Q2K, Iq3Xs, Iq3Xxs, Q3KS, Q3KM, Iq4Nl, Q4KS, Q4KM, Iq3S, Iq3M, Iq4Xs)) type = GgmlType.Q5_K;
            }
            else if (Is(Q2K)) type = GgmlType.Q3_K;
            else if (Is(Iq3Xxs)) type = GgmlType.IQ3_S;
            else if (Is(Q3KM)) type = GgmlType.Q4_K;
            else if (Is(Q3KL)) type = GgmlType.Q5_K;
            else if (Is(Iq3M)) type = GgmlType.Q4_K;
        }
        else if (c == Category.AttentionQkv)
        {
            if (Is(Q3KM, Q3KL, Iq3M)) type = GgmlType.Q4_K;
            else if (Is(Q4KM)) type = GgmlType.Q5_K;
            else if (Is(Q5KM)) type = GgmlType.Q6_K;
        }
        else if (c == Category.FfnGate)
        {
            var (i, n) = LayerInfo(_iFfnGate, name);
            if (Is(Iq3Xs) && i >= n / 8 && i < 7 * n / 8) type = GgmlType.IQ3_XXS;
            ++_iFfnGate;
        }
        else if (c == Category.FfnUp)
        {
            var (i, n) = LayerInfo(_iFfnUp, name);
            if (Is(Iq3Xs) && i >= n / 8 && i < 7 * n / 8) type = GgmlType.IQ3_XXS;
            ++_iFfnUp;
        }
        return type;
    }

    /// <summary>llama.cpp's tensor_type_fallback: rows that are not whole blocks of a type take one whose blocks fit.</summary>
    private static GgmlType Fallback(GgufTensorInfo t, GgmlType type)
    {
        long cols = t.Shape[0];
        if (cols % GgmlTypeInfo.BlockSize(type) == 0) return type;
        if (ModelQuantizer.FallbackOf(type) is not { } fallback)
            throw new ArgumentException($"{t.Name}: {cols} columns are not whole {GgmlTypeInfo.Name(type)} blocks, and {GgmlTypeInfo.Name(type)} has no fallback type");
        return cols % GgmlTypeInfo.BlockSize(fallback) == 0 ? fallback : GgmlType.F16;
    }
}
