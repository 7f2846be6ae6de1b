// The type each weight matrix of a model takes: one type for all, llama.cpp's _M mixes, or the mix of unsloth's
// DeepSeek-R1 UD-IQ1_S (and a stand-in for it in K-quants). Vectors (norms, biases) and the MoE router stay F32.
using R1Sharp.Tensors;

namespace R1Sharp.Models;

/// <param name="Layers">Transformer blocks (MTP blocks not counted).</param>
/// <param name="LeadingDenseLayers">Blocks before the first MoE block (deepseek2), else 0.</param>
/// <param name="HasOutput">Whether output.weight is its own tensor (not tied to token_embd).</param>
public readonly record struct ModelLayout(int Layers, int LeadingDenseLayers, bool HasOutput);

public abstract record WeightMix(string Name, int FileType)
{
    /// <summary>The type of a matrix; rows that are not whole blocks of it fall back as llama.cpp's do.</summary>
    public GgmlType TypeOf(string tensor, long[] shape, ModelLayout model) =>
        ModelQuantizer.Fallback(Choose(tensor, shape, model), shape[0]);

    protected abstract GgmlType Choose(string tensor, long[] shape, ModelLayout model);

    /// <summary>Every matrix in one type.</summary>
    public static WeightMix Of(GgmlType type) => new Single(type);

    public static IReadOnlyList<string> Names =>
        [.. Synthesizer.Types.Select(GgmlTypeInfo.Name), "q4_k_m", "q5_k_m", UdIq1S.Name, UdIq1SKQuants.Name];

    public static WeightMix Parse(string name)
    {
        if (GgmlTypeInfo.TryParse(name, out var t))
        {
            if (!Synthesizer.Types.Contains(t))
                throw new ArgumentException($"synth cannot write type {GgmlTypeInfo.Name(t)} (types and mixes: {string.Join(", ", Names)})");
            return Of(t);
        }
        if (name.Equals(UdIq1S.Name, StringComparison.OrdinalIgnoreCase)) return UdIq1S;
        if (name.Equals(UdIq1SKQuants.Name, StringComparison.OrdinalIgnoreCase)) return UdIq1SKQuants;
        var target = QuantizeTarget.All.FirstOrDefault(q => q.FileType is 15 or 17 && q.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown weight type or mix '{name}' (types and mixes: {string.Join(", ", Names)})");
        return new Quantize(target);
    }

    private sealed record Single(GgmlType Type) : WeightMix(GgmlTypeInfo.Name(Type), FileTypeOf(Type))
    {
        protected override GgmlType Choose(string tensor, long[] shape, ModelLayout model) => Type;
    }

    /// <summary>llama.cpp's q4_k_m / q5_k_m (<see cref="ModelQuantizer.TypeFor"/>).</summary>
    private sealed record Quantize(QuantizeTarget Target) : WeightMix(Target.Name, Target.FileType)
    {
        protected override GgmlType Choose(string tensor, long[] shape, ModelLayout model) =>
            ModelQuantizer.TypeFor(Target, new Formats.GgufTensorInfo(tensor, shape, GgmlType.F32, 0), model.HasOutput, model.Layers);
    }

    /// <summary>
    /// unsloth's DeepSeek-R1 UD-IQ1_S (llama.cpp's load log: f32 361, q4_K 190, q5_K 116, q6_K 184, iq2_xxs 6, iq1_s
    /// 168 tensors): the routed experts in IQ1_S but the down projections of the first six MoE layers in IQ2_XXS;
    /// attention (q_a, q_b, kv_a_mqa) and the dense FFN's gate and up in Q4_K, attn_kv_b, attn_output and the dense
    /// FFN's down in Q6_K; the shared expert's gate and up in Q5_K, its down in Q6_K; token_embd Q4_K, output Q6_K.
    /// The counts are the log's; which six down projections and which attention matrices take Q6_K is this mix's
    /// reading of unsloth's description (docs/gguf-files.md).
    /// </summary>
    public static readonly WeightMix UdIq1S = new Ud("ud-iq1_s", Iq1: GgmlType.IQ1_S, Iq2: GgmlType.IQ2_XXS);

    /// <summary><see cref="UdIq1S"/> with Q2_K in place of IQ1_S and IQ2_XXS (the larger-than-memory measurement's file).</summary>
    public static readonly WeightMix UdIq1SKQuants = new Ud("ud-iq1_s-kquants", Iq1: GgmlType.Q2_K, Iq2: GgmlType.Q2_K);

    /// <summary>The first this many MoE layers take IQ2_XXS down projections in UD-IQ1_S.</summary>
    public const int UdIq2DownLayers = 6;

    private sealed record Ud(string MixName, GgmlType Iq1, GgmlType Iq2) : WeightMix(MixName, 24)
    {
        protected override GgmlType Choose(string tensor, long[] shape, ModelLayout model)
        {
            if (tensor == "output.weight") return GgmlType.Q6_K;
            if (tensor == "token_embd.weight") return model.HasOutput ? GgmlType.Q4_K : GgmlType.Q6_K;
            string role = tensor[(tensor.IndexOf('.', 4) + 1)..];
            if (tensor.Contains("_exps.", StringComparison.Ordinal))
            {
                bool early = ModelQuantizer.Block(tensor) is int b && b < model.LeadingDenseLayers + UdIq2DownLayers;
                return role.StartsWith("ffn_down", StringComparison.Ordinal) && early ? Iq2 : Iq1;
            }
            return role switch
            {
                "attn_kv_b.weight" or "attn_k_b.weight" or "attn_v_b.weight" or "attn_output.weight" => GgmlType.Q6_K,
                "ffn_down.weight" or "ffn_down_shexp.weight" => GgmlType.Q6_K,
                "ffn_gate_shexp.weight" or "ffn_up_shexp.weight" => GgmlType.Q5_K,
                _ => GgmlType.Q4_K,
            };
        }
    }

    private static int FileTypeOf(GgmlType t) => t switch
    {
        GgmlType.F32 => 0, GgmlType.F16 => 1, GgmlType.Q4_0 => 2, GgmlType.Q4_1 => 3, GgmlType.Q8_0 => 7, GgmlType.Q5_0 => 8,
        GgmlType.Q5_1 => 9, GgmlType.Q2_K => 10, GgmlType.Q3_K => 12, GgmlType.Q4_K => 14, GgmlType.Q5_K => 16,
        GgmlType.Q6_K => 18, GgmlType.BF16 => 32, GgmlType.IQ2_XXS => 19, GgmlType.IQ2_XS => 20, GgmlType.IQ3_XXS => 23,
        GgmlType.IQ1_S => 24, GgmlType.IQ4_NL => 25, GgmlType.IQ3_S => 26, GgmlType.IQ2_S => 28, GgmlType.IQ4_XS => 30,
        GgmlType.IQ1_M => 31, GgmlType.TQ1_0 => 36, GgmlType.TQ2_0 => 37, GgmlType.MXFP4 => 38, _ => 0,
    };
}
