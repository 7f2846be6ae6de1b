// F16 weights. ggml's vec_dot_type for F16 is F16: activations are rounded to half (nearest even), then both sides are
// widened to float and multiplied in float. The activation row keeps the rounded values as floats, so only the weight
// side is converted in the dot loop.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class F16Kernels
{
    private readonly struct Row : IFloatRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load(byte* row, int i) => HalfConvert.F16ToF32(((ushort*)row)[i]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load4(byte* row, int i) => HalfConvert.F16ToF32(Load4Raw(row, i));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(byte* row, int i) =>
            HalfConvert.F16ToF32(Avx2.ConvertToVector256Int32(Vector128.Load((short*)row + i)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, int i) =>
            HalfConvert.F16ToF32(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)row + i)));
    }

    /// <summary>Rows without Inf/NaN (checked first, cheaply): the conversion skips the special-value fix-up.</summary>
    private readonly struct FiniteRow : IFloatRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load(byte* row, int i) => HalfConvert.F16ToF32(((ushort*)row)[i]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load4(byte* row, int i) => HalfConvert.F16ToF32Finite(Load4Raw(row, i));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(byte* row, int i) =>
            HalfConvert.F16ToF32Finite(Avx2.ConvertToVector256Int32(Vector128.Load((short*)row + i)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, int i) =>
            HalfConvert.F16ToF32Finite(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)row + i)));
    }

    /// <summary>Halves i..i+3, one per 32-bit lane (low half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Load4Raw(byte* row, int i) =>
        Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)((ushort*)row + i)).AsUInt16()).AsInt32();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot128(byte* w, byte* act, int n) => HalfConvert.AnyF16InfOrNaN((ushort*)w, n)
        ? FloatDot.Dot128<Row>(w, act, n) : FloatDot.Dot128<FiniteRow>(w, act, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4_128(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        if (HalfConvert.AnyF16InfOrNaN((ushort*)w, n)) FloatDot.Dot4_128<Row>(w, act, actStride, n, y, yStride);
        else FloatDot.Dot4_128<FiniteRow>(w, act, actStride, n, y, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot256(byte* w, byte* act, int n) => HalfConvert.AnyF16InfOrNaN((ushort*)w, n)
        ? FloatDot.Dot256<Row>(w, act, n) : FloatDot.Dot256<FiniteRow>(w, act, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot512(byte* w, byte* act, int n) => HalfConvert.AnyF16InfOrNaN((ushort*)w, n)
        ? FloatDot.Dot512<Row>(w, act, n) : FloatDot.Dot512<FiniteRow>(w, act, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4_256(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        if (HalfConvert.AnyF16InfOrNaN((ushort*)w, n)) FloatDot.Dot4_256<Row>(w, act, actStride, n, y, yStride);
        else FloatDot.Dot4_256<FiniteRow>(w, act, actStride, n, y, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4_512(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        if (HalfConvert.AnyF16InfOrNaN((ushort*)w, n)) FloatDot.Dot4_512<Row>(w, act, actStride, n, y, yStride);
        else FloatDot.Dot4_512<FiniteRow>(w, act, actStride, n, y, yStride);
    }

    private static void DequantizeRowF16_512(byte* x, float* y, int n)
    {
        int i = 0;
        for (; i + 16 <= n; i += 16) Row.Load16(x, i).Store(y + i);
        for (; i < n; i++) y[i] = Row.Load(x, i);
    }

    private static void DequantizeRowF16_256(byte* x, float* y, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8) Row.Load8(x, i).Store(y + i);
        for (; i < n; i++) y[i] = Row.Load(x, i);
    }

    /// <summary>ggml's scalar ggml_vec_dot_f16: both rows F16, products in float, summed in double.</summary>
    public static float VecDotF16Reference(int n, ushort* x, ushort* y)
    {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += HalfConvert.F16ToF32(x[i]) * HalfConvert.F16ToF32(y[i]);
        return (float)sum;
    }

    /// <summary>Activations for F16 weights: each value rounded to the nearest half, kept as float.</summary>
    public static void QuantizeActivationsScalar(float* x, byte* act, int n)
    {
        float* a = (float*)act;
        for (int i = 0; i < n; i++) a[i] = HalfConvert.F16ToF32(HalfConvert.F32ToF16(x[i]));
    }

    private static void QuantizeActivationsVector(float* x, byte* act, int n)
    {
        const int Chunk = 512;
        Half* h = stackalloc Half[Chunk];
        float* a = (float*)act;
        for (int i = 0; i < n; i += Chunk)
        {
            int m = Math.Min(Chunk, n - i);
            TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(x + i, m), new Span<Half>(h, m));
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(h, m), new Span<float>(a + i, m));
        }
    }

    public static void QuantizeRowF16Reference(float* x, byte* y, int n)
    {
        for (int i = 0; i < n; i++) ((ushort*)y)[i] = HalfConvert.F32ToF16(x[i]);
    }

    private static void QuantizeRowF16(float* x, byte* y, int n) =>
        TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(x, n), new Span<Half>(y, n));

    public static void DequantizeRowF16Reference(byte* x, float* y, int n)
    {
        for (int i = 0; i < n; i++) y[i] = HalfConvert.F16ToF32(((ushort*)x)[i]);
    }

    public static TypeKernels Create(SimdLevel level) => new()
    {
        Type = GgmlType.F16,
        VecDotType = GgmlType.F16,
        ActivationRowBytes = &FloatDot.ActivationRowBytes,
        ActivationsToFloat = &FloatDot.ActivationsToFloat,
        QuantizeActivations = level == SimdLevel.Scalar ? &QuantizeActivationsScalar : &QuantizeActivationsVector,
        Dot = level switch
        {
            SimdLevel.V512 => &Dot512,
            SimdLevel.V256 => &Dot256,
            SimdLevel.V128 or SimdLevel.V128Dot => &Dot128,
            _ => &FloatDot.DotScalar<Row>,
        },
        TileTokens = 4,
        DotTile = level switch
        {
            SimdLevel.V512 => &Dot4_512,
            SimdLevel.V256 => &Dot4_256,
            SimdLevel.V128 or SimdLevel.V128Dot => &Dot4_128,
            _ => &FloatDot.Dot4Scalar<Row>,
        },
        DequantizeRow = level switch
        {
            SimdLevel.V512 => &DequantizeRowF16_512,
            SimdLevel.V256 => &DequantizeRowF16_256,
            _ => &DequantizeRowF16Reference,
        },
        QuantizeRow = level == SimdLevel.Scalar ? &QuantizeRowF16Reference : &QuantizeRowF16,
    };
}
