// One table of the scalar reference functions per ggml block type, for wiring into the kernel dispatch table.
// VecDotType is the activation format ggml quantizes the other operand to (its vec_dot_type).
using R1Sharp.Tensors;

namespace R1Sharp.Kernels.Quants;

/// <summary>Quantized row → floats; dst.Length is the value count (a multiple of the block size).</summary>
public delegate void DequantizeRowFn(ReadOnlySpan<byte> src, Span<float> dst);

/// <summary>Floats → quantized row; src.Length is the value count (a multiple of the block size).</summary>
public delegate void QuantizeRowFn(ReadOnlySpan<float> src, Span<byte> dst);

/// <summary>
/// Floats → quantized row as ggml's quantize_* (what ggml_quantize_chunk writes), with importance weights (one per
/// value, an imatrix's column means) or none (empty).
/// </summary>
public delegate void QuantizeWeightedFn(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance);

/// <summary>Dot product of n values: a weight row w against an activation row x in the weight's VecDotType.</summary>
public delegate float VecDotFn(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x);

/// <param name="Type">The block type.</param>
/// <param name="BlockSize">Values per block.</param>
/// <param name="BlockBytes">Bytes per block.</param>
/// <param name="Dequantize">dequantize_row_*.</param>
/// <param name="QuantizeReference">
/// quantize_row_*_ref. IQ2_XXS, IQ2_XS and IQ1_S have none (it throws NotSupportedException); IQ1_M's is quantize_iq1_m
/// without weights.
/// </param>
/// <param name="VecDotType">The activation type of the dot product (the type itself for the activation-only Q8_1 and Q8_K).</param>
/// <param name="VecDotReference">The generic ggml_vec_dot_*; null for Q8_1 and Q8_K, which are only ever the activation side.</param>
/// <param name="Quantize">
/// quantize_*: what llama.cpp's quantize writes, with or without an importance matrix (without one it is the
/// reference quantizer for every type but IQ4_NL, whose reference tries one scale where quantize_iq4_nl tries 15).
/// </param>
/// <param name="RequiresImportance">ggml_quantize_requires_imatrix: the type cannot be quantized without importance weights.</param>
public sealed record QuantFormat(
    GgmlType Type,
    int BlockSize,
    int BlockBytes,
    DequantizeRowFn Dequantize,
    QuantizeRowFn QuantizeReference,
    GgmlType VecDotType,
    VecDotFn? VecDotReference,
    QuantizeWeightedFn Quantize,
    bool RequiresImportance);

public static class QuantFormats
{
    private static readonly Dictionary<GgmlType, QuantFormat> s_formats = Build();

    /// <summary>All block types with a reference implementation.</summary>
    public static IReadOnlyCollection<QuantFormat> All => s_formats.Values;

    public static bool IsSupported(GgmlType type) => s_formats.ContainsKey(type);

    /// <summary>The reference functions of a quantized block type; throws for float and unknown types.</summary>
    public static QuantFormat Get(GgmlType type) =>
        s_formats.TryGetValue(type, out var f) ? f
        : throw new ArgumentException($"no quantized block format for tensor type {type}", nameof(type));

    private static Dictionary<GgmlType, QuantFormat> Build()
    {
        var list = new[]
        {
            MakeWeighted(GgmlType.Q4_0, QuantReference.DequantizeRowQ4_0, QuantReference.QuantizeRowQ4_0Reference, QuantReference.QuantizeQ4_0, GgmlType.Q8_0, QuantReference.VecDotQ4_0Q8_0Reference),
            MakeWeighted(GgmlType.Q4_1, QuantReference.DequantizeRowQ4_1, QuantReference.QuantizeRowQ4_1Reference, QuantReference.QuantizeQ4_1, GgmlType.Q8_1, QuantReference.VecDotQ4_1Q8_1Reference),
            MakeWeighted(GgmlType.Q5_0, QuantReference.DequantizeRowQ5_0, QuantReference.QuantizeRowQ5_0Reference, QuantReference.QuantizeQ5_0, GgmlType.Q8_0, QuantReference.VecDotQ5_0Q8_0Reference),
            MakeWeighted(GgmlType.Q5_1, QuantReference.DequantizeRowQ5_1, QuantReference.QuantizeRowQ5_1Reference, QuantReference.QuantizeQ5_1, GgmlType.Q8_1, QuantReference.VecDotQ5_1Q8_1Reference),
            Make(GgmlType.Q8_0, QuantReference.DequantizeRowQ8_0, QuantReference.QuantizeRowQ8_0Reference, GgmlType.Q8_0, QuantReference.VecDotQ8_0Q8_0Reference, importanceUnused: true),
            Make(GgmlType.Q8_1, QuantReference.DequantizeRowQ8_1, QuantReference.QuantizeRowQ8_1Reference, GgmlType.Q8_1, null),
            MakeWeighted(GgmlType.Q2_K, QuantReference.DequantizeRowQ2_K, QuantReference.QuantizeRowQ2_KReference, QuantReference.QuantizeQ2_K, GgmlType.Q8_K, QuantReference.VecDotQ2_KQ8_KReference),
            MakeWeighted(GgmlType.Q3_K, QuantReference.DequantizeRowQ3_K, QuantReference.QuantizeRowQ3_KReference, QuantReference.QuantizeQ3_K, GgmlType.Q8_K, QuantReference.VecDotQ3_KQ8_KReference),
            MakeWeighted(GgmlType.Q4_K, QuantReference.DequantizeRowQ4_K, QuantReference.QuantizeRowQ4_KReference, QuantReference.QuantizeQ4_K, GgmlType.Q8_K, QuantReference.VecDotQ4_KQ8_KReference),
            MakeWeighted(GgmlType.Q5_K, QuantReference.DequantizeRowQ5_K, QuantReference.QuantizeRowQ5_KReference, QuantReference.QuantizeQ5_K, GgmlType.Q8_K, QuantReference.VecDotQ5_KQ8_KReference),
            MakeWeighted(GgmlType.Q6_K, QuantReference.DequantizeRowQ6_K, QuantReference.QuantizeRowQ6_KReference, QuantReference.QuantizeQ6_K, GgmlType.Q8_K, QuantReference.VecDotQ6_KQ8_KReference),
            Make(GgmlType.Q8_K, QuantReference.DequantizeRowQ8_K, QuantReference.QuantizeRowQ8_KReference, GgmlType.Q8_K, null),
            MakeWeighted(GgmlType.IQ2_XXS, QuantReference.DequantizeRowIQ2_XXS, null, QuantReference.QuantizeIQ2_XXS, GgmlType.Q8_K, QuantReference.VecDotIQ2_XXSQ8_KReference),
            MakeWeighted(GgmlType.IQ2_XS, QuantReference.DequantizeRowIQ2_XS, null, QuantReference.QuantizeIQ2_XS, GgmlType.Q8_K, QuantReference.VecDotIQ2_XSQ8_KReference),
            MakeWeighted(GgmlType.IQ2_S, QuantReference.DequantizeRowIQ2_S, (s, d) => QuantReference.QuantizeIQ2_S(s, d, default), QuantReference.QuantizeIQ2_S, GgmlType.Q8_K, QuantReference.VecDotIQ2_SQ8_KReference),
            MakeWeighted(GgmlType.IQ3_XXS, QuantReference.DequantizeRowIQ3_XXS, QuantReference.QuantizeRowIQ3_XXSReference, QuantReference.QuantizeIQ3_XXS, GgmlType.Q8_K, QuantReference.VecDotIQ3_XXSQ8_KReference),
            MakeWeighted(GgmlType.IQ3_S, QuantReference.DequantizeRowIQ3_S, QuantReference.QuantizeRowIQ3_SReference, QuantReference.QuantizeIQ3_S, GgmlType.Q8_K, QuantReference.VecDotIQ3_SQ8_KReference),
            MakeWeighted(GgmlType.IQ1_S, QuantReference.DequantizeRowIQ1_S, null, QuantReference.QuantizeIQ1_S, GgmlType.Q8_K, QuantReference.VecDotIQ1_SQ8_KReference),
            MakeWeighted(GgmlType.IQ1_M, QuantReference.DequantizeRowIQ1_M, (s, d) => QuantReference.QuantizeIQ1_M(s, d, default), QuantReference.QuantizeIQ1_M, GgmlType.Q8_K, QuantReference.VecDotIQ1_MQ8_KReference),
            MakeWeighted(GgmlType.IQ4_NL, QuantReference.DequantizeRowIQ4_NL, QuantReference.QuantizeRowIQ4_NLReference, QuantReference.QuantizeIQ4_NL, GgmlType.Q8_0, QuantReference.VecDotIQ4_NLQ8_0Reference),
            MakeWeighted(GgmlType.IQ4_XS, QuantReference.DequantizeRowIQ4_XS, QuantReference.QuantizeRowIQ4_XSReference, QuantReference.QuantizeIQ4_XS, GgmlType.Q8_K, QuantReference.VecDotIQ4_XSQ8_KReference),
            Make(GgmlType.TQ1_0, QuantReference.DequantizeRowTQ1_0, QuantReference.QuantizeRowTQ1_0Reference, GgmlType.Q8_K, QuantReference.VecDotTQ1_0Q8_KReference, importanceUnused: true),
            Make(GgmlType.TQ2_0, QuantReference.DequantizeRowTQ2_0, QuantReference.QuantizeRowTQ2_0Reference, GgmlType.Q8_K, QuantReference.VecDotTQ2_0Q8_KReference, importanceUnused: true),
            Make(GgmlType.MXFP4, QuantReference.DequantizeRowMXFP4, QuantReference.QuantizeRowMXFP4Reference, GgmlType.Q8_0, QuantReference.VecDotMXFP4Q8_0Reference, importanceUnused: true),
        };
        return list.ToDictionary(f => f.Type);
    }

    /// <summary>
    /// A type whose quantize_* is its reference quantizer: ggml ignores importance weights for Q8_0, TQ1_0, TQ2_0 and
    /// MXFP4; the activation types Q8_1 and Q8_K take none.
    /// </summary>
    private static QuantFormat Make(GgmlType t, DequantizeRowFn dq, QuantizeRowFn q, GgmlType vecDotType, VecDotFn? dot, bool importanceUnused = false) =>
        new(t, GgmlTypeInfo.BlockSize(t), GgmlTypeInfo.BlockBytes(t), dq, q, vecDotType, dot, (src, dst, importance) =>
        {
            if (!importance.IsEmpty && !importanceUnused)
                throw new ArgumentException($"{GgmlTypeInfo.Name(t)} takes no importance weights");
            q(src, dst);
        }, RequiresImportance: false);

    /// <summary>A type whose quantize_* uses importance weights; no reference quantizer (null) means it needs them.</summary>
    private static QuantFormat MakeWeighted(GgmlType t, DequantizeRowFn dq, QuantizeRowFn? reference, QuantizeWeightedFn quantize, GgmlType vecDotType, VecDotFn dot) =>
        new(t, GgmlTypeInfo.BlockSize(t), GgmlTypeInfo.BlockBytes(t), dq,
            reference ?? ((_, _) => throw new NotSupportedException($"{GgmlTypeInfo.Name(t)} cannot be quantized without an importance matrix")),
            vecDotType, dot, quantize, RequiresImportance: t is GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ1_S);
}
