// One table of the scalar reference functions per ggml block type, for wiring into the kernel dispatch table.
// VecDotType is the activation format ggml quantizes the other operand to (its vec_dot_type).
using R1Sharp.Tensors;

namespace R1Sharp.Kernels.Quants;

/// <summary>Quantized row → floats; dst.Length is the value count (a multiple of the block size).</summary>
public delegate void DequantizeRowFn(ReadOnlySpan<byte> src, Span<float> dst);

/// <summary>Floats → quantized row; src.Length is the value count (a multiple of the block size).</summary>
public delegate void QuantizeRowFn(ReadOnlySpan<float> src, Span<byte> dst);

/// <summary>Dot product of n values: a weight row w against an activation row x in the weight's VecDotType.</summary>
public delegate float VecDotFn(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x);

/// <param name="Type">The block type.</param>
/// <param name="BlockSize">Values per block.</param>
/// <param name="BlockBytes">Bytes per block.</param>
/// <param name="Dequantize">dequantize_row_*.</param>
/// <param name="QuantizeReference">quantize_row_*_ref, what llama.cpp's quantize writes without an importance matrix.</param>
/// <param name="VecDotType">The activation type of the dot product (the type itself for the activation-only Q8_1 and Q8_K).</param>
/// <param name="VecDotReference">The generic ggml_vec_dot_*; null for Q8_1 and Q8_K, which are only ever the activation side.</param>
public sealed record QuantFormat(
    GgmlType Type,
    int BlockSize,
    int BlockBytes,
    DequantizeRowFn Dequantize,
    QuantizeRowFn QuantizeReference,
    GgmlType VecDotType,
    VecDotFn? VecDotReference);

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
            Make(GgmlType.Q4_0, QuantReference.DequantizeRowQ4_0, QuantReference.QuantizeRowQ4_0Reference, GgmlType.Q8_0, QuantReference.VecDotQ4_0Q8_0Reference),
            Make(GgmlType.Q4_1, QuantReference.DequantizeRowQ4_1, QuantReference.QuantizeRowQ4_1Reference, GgmlType.Q8_1, QuantReference.VecDotQ4_1Q8_1Reference),
            Make(GgmlType.Q5_0, QuantReference.DequantizeRowQ5_0, QuantReference.QuantizeRowQ5_0Reference, GgmlType.Q8_0, QuantReference.VecDotQ5_0Q8_0Reference),
            Make(GgmlType.Q5_1, QuantReference.DequantizeRowQ5_1, QuantReference.QuantizeRowQ5_1Reference, GgmlType.Q8_1, QuantReference.VecDotQ5_1Q8_1Reference),
            Make(GgmlType.Q8_0, QuantReference.DequantizeRowQ8_0, QuantReference.QuantizeRowQ8_0Reference, GgmlType.Q8_0, QuantReference.VecDotQ8_0Q8_0Reference),
            Make(GgmlType.Q8_1, QuantReference.DequantizeRowQ8_1, QuantReference.QuantizeRowQ8_1Reference, GgmlType.Q8_1, null),
            Make(GgmlType.Q2_K, QuantReference.DequantizeRowQ2_K, QuantReference.QuantizeRowQ2_KReference, GgmlType.Q8_K, QuantReference.VecDotQ2_KQ8_KReference),
            Make(GgmlType.Q3_K, QuantReference.DequantizeRowQ3_K, QuantReference.QuantizeRowQ3_KReference, GgmlType.Q8_K, QuantReference.VecDotQ3_KQ8_KReference),
            Make(GgmlType.Q4_K, QuantReference.DequantizeRowQ4_K, QuantReference.QuantizeRowQ4_KReference, GgmlType.Q8_K, QuantReference.VecDotQ4_KQ8_KReference),
            Make(GgmlType.Q5_K, QuantReference.DequantizeRowQ5_K, QuantReference.QuantizeRowQ5_KReference, GgmlType.Q8_K, QuantReference.VecDotQ5_KQ8_KReference),
            Make(GgmlType.Q6_K, QuantReference.DequantizeRowQ6_K, QuantReference.QuantizeRowQ6_KReference, GgmlType.Q8_K, QuantReference.VecDotQ6_KQ8_KReference),
            Make(GgmlType.Q8_K, QuantReference.DequantizeRowQ8_K, QuantReference.QuantizeRowQ8_KReference, GgmlType.Q8_K, null),
        };
        return list.ToDictionary(f => f.Type);
    }

    private static QuantFormat Make(GgmlType t, DequantizeRowFn dq, QuantizeRowFn q, GgmlType vecDotType, VecDotFn? dot) =>
        new(t, GgmlTypeInfo.BlockSize(t), GgmlTypeInfo.BlockBytes(t), dq, q, vecDotType, dot);
}
