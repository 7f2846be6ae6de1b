// The quantized block types (Q4_0 … Q6_K) in the kernel table: every type runs through its scalar reference
// (Quants/QuantReference.*), and the types that have SIMD kernels (Q4KKernels, Q6KKernels, …) replace the dot products.
// Activations are kept in ggml's own block layout of the vec_dot_type (block_q8_0, block_q8_1, block_q8_K), quantized
// as ggml-cpu does on x86: quantize_row_q8_0/q8_1 round to nearest even with id = 127/amax; quantize_row_q8_K is
// quantize_row_q8_K_ref there.
using System.Runtime.CompilerServices;
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

/// <summary>One quantized block type's reference functions, as static members so kernels can take their addresses.</summary>
internal interface IQuantBlock
{
    static abstract GgmlType Type { get; }
    static abstract GgmlType VecDotType { get; }
    static abstract void Dequantize(ReadOnlySpan<byte> src, Span<float> dst);
    static abstract void Quantize(ReadOnlySpan<float> src, Span<byte> dst);
    static abstract float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x);
}

internal readonly struct Q4_0Block : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q4_0;
    public static GgmlType VecDotType => GgmlType.Q8_0;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ4_0(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ4_0Reference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ4_0Q8_0Reference(n, w, x);
}

internal readonly struct Q4_1Block : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q4_1;
    public static GgmlType VecDotType => GgmlType.Q8_1;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ4_1(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ4_1Reference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ4_1Q8_1Reference(n, w, x);
}

internal readonly struct Q5_0Block : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q5_0;
    public static GgmlType VecDotType => GgmlType.Q8_0;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ5_0(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ5_0Reference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ5_0Q8_0Reference(n, w, x);
}

internal readonly struct Q5_1Block : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q5_1;
    public static GgmlType VecDotType => GgmlType.Q8_1;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ5_1(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ5_1Reference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ5_1Q8_1Reference(n, w, x);
}

internal readonly struct Q2_KBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q2_K;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ2_K(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ2_KReference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ2_KQ8_KReference(n, w, x);
}

internal readonly struct Q3_KBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q3_K;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ3_K(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ3_KReference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ3_KQ8_KReference(n, w, x);
}

internal readonly struct Q4_KBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q4_K;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ4_K(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ4_KReference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ4_KQ8_KReference(n, w, x);
}

internal readonly struct Q5_KBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q5_K;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ5_K(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ5_KReference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ5_KQ8_KReference(n, w, x);
}

internal readonly struct Q6_KBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.Q6_K;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ6_K(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowQ6_KReference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotQ6_KQ8_KReference(n, w, x);
}

internal static unsafe class QuantBlockKernels
{
    /// <summary>The scalar kernels of block type T: ggml's reference functions over ggml-layout activations.</summary>
    public static TypeKernels Create<T>() where T : IQuantBlock => new()
    {
        Type = T.Type,
        VecDotType = T.VecDotType,
        ActivationRowBytes = T.VecDotType switch
        {
            GgmlType.Q8_0 => &ActivationRowBytesQ8_0,
            GgmlType.Q8_1 => &ActivationRowBytesQ8_1,
            _ => &ActivationRowBytesQ8_K,
        },
        QuantizeActivations = T.VecDotType switch
        {
            GgmlType.Q8_0 => &Q8_0Kernels.QuantizeRowQ8_0,
            GgmlType.Q8_1 => &QuantizeRowQ8_1,
            _ => &QuantizeRowQ8_K,
        },
        ActivationsToFloat = T.VecDotType switch
        {
            GgmlType.Q8_0 => &ActivationsToFloat<Q8_0Act>,
            GgmlType.Q8_1 => &ActivationsToFloat<Q8_1Act>,
            _ => &ActivationsToFloat<Q8_KAct>,
        },
        Dot = &Dot<T>,
        TileTokens = 4,
        DotTile = &Dot4<T>,
        DequantizeRow = &DequantizeRow<T>,
        QuantizeRow = &QuantizeRow<T>,
    };

    // ---- activations (ggml layout, each row padded to 64 bytes) ----

    private static long Padded(long bytes) => (bytes + 63) & ~63L;

    public static long ActivationRowBytesQ8_0(int n) => Padded(GgmlTypeInfo.RowBytes(GgmlType.Q8_0, n));

    public static long ActivationRowBytesQ8_1(int n) => Padded(GgmlTypeInfo.RowBytes(GgmlType.Q8_1, n));

    public static long ActivationRowBytesQ8_K(int n) => Padded(GgmlTypeInfo.RowBytes(GgmlType.Q8_K, n));

    /// <summary>ggml-cpu's x86 quantize_row_q8_1: d = amax/127, q = round-to-nearest-even(x·127/amax), s = d·Σq (F16).</summary>
    public static void QuantizeRowQ8_1(float* x, byte* y, int n)
    {
        const int QK = 32, BlockBytes = 36;
        for (int b = 0; b < n / QK; b++, x += QK, y += BlockBytes)
        {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127f;
            float id = amax != 0 ? 127f / amax : 0f;
            int sum = 0;
            for (int j = 0; j < QK; j++)
            {
                int q = (int)MathF.Round(x[j] * id);
                ((sbyte*)(y + 4))[j] = (sbyte)q;
                sum += q;
            }
            *(ushort*)y = HalfConvert.F32ToF16(d);
            *(ushort*)(y + 2) = HalfConvert.F32ToF16(d * sum);
        }
    }

    /// <summary>ggml-cpu's quantize_row_q8_K (on x86 the reference one).</summary>
    public static void QuantizeRowQ8_K(float* x, byte* y, int n) =>
        QuantReference.QuantizeRowQ8_KReference(new ReadOnlySpan<float>(x, n), new Span<byte>(y, (int)GgmlTypeInfo.RowBytes(GgmlType.Q8_K, n)));

    private readonly struct Q8_0Act : IActivationBlock
    {
        public static GgmlType Type => GgmlType.Q8_0;
        public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ8_0(src, dst);
    }

    private readonly struct Q8_1Act : IActivationBlock
    {
        public static GgmlType Type => GgmlType.Q8_1;
        public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ8_1(src, dst);
    }

    private readonly struct Q8_KAct : IActivationBlock
    {
        public static GgmlType Type => GgmlType.Q8_K;
        public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowQ8_K(src, dst);
    }

    private interface IActivationBlock
    {
        static abstract GgmlType Type { get; }
        static abstract void Dequantize(ReadOnlySpan<byte> src, Span<float> dst);
    }

    private static void ActivationsToFloat<T>(byte* src, float* dst, int n) where T : IActivationBlock =>
        T.Dequantize(new ReadOnlySpan<byte>(src, (int)GgmlTypeInfo.RowBytes(T.Type, n)), new Span<float>(dst, n));

    // ---- weights ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RowBytes(GgmlType type, int n) => (int)GgmlTypeInfo.RowBytes(type, n);

    public static void DequantizeRow<T>(byte* src, float* dst, int n) where T : IQuantBlock =>
        T.Dequantize(new ReadOnlySpan<byte>(src, RowBytes(T.Type, n)), new Span<float>(dst, n));

    public static void QuantizeRow<T>(float* src, byte* dst, int n) where T : IQuantBlock =>
        T.Quantize(new ReadOnlySpan<float>(src, n), new Span<byte>(dst, RowBytes(T.Type, n)));

    public static float Dot<T>(byte* w, byte* act, int n) where T : IQuantBlock =>
        T.VecDot(n, new ReadOnlySpan<byte>(w, RowBytes(T.Type, n)), new ReadOnlySpan<byte>(act, RowBytes(T.VecDotType, n)));

    public static void Dot4<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : IQuantBlock
    {
        for (int t = 0; t < 4; t++) y[t * yStride] = Dot<T>(w, act + t * actStride, n);
    }
}
