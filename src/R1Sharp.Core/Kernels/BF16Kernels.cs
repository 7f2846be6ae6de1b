// BF16 weights. ggml's vec_dot_type for BF16 is BF16: activations are rounded to bfloat16 (nearest even, NaN kept
// quiet), then both sides are widened to float (a 16-bit shift) and multiplied in float.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class BF16Kernels
{
    private readonly struct Row : IFloatRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load(byte* row, int i) => HalfConvert.BF16ToF32(((ushort*)row)[i]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load4(byte* row, int i) =>
            Vector128.ShiftLeft(Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)((ushort*)row + i)).AsUInt16()), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(byte* row, int i) =>
            HalfConvert.BF16ToF32(Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)row + i)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, int i) =>
            HalfConvert.BF16ToF32(Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)row + i)));
    }

    /// <summary>ggml's scalar ggml_vec_dot_bf16: both rows BF16, products in float, summed in double.</summary>
    public static float VecDotBF16Reference(int n, ushort* x, ushort* y)
    {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += HalfConvert.BF16ToF32(x[i]) * HalfConvert.BF16ToF32(y[i]);
        return (float)sum;
    }

    /// <summary>Activations for BF16 weights: each value rounded to bfloat16, kept as float.</summary>
    public static void QuantizeActivationsScalar(float* x, byte* act, int n)
    {
        float* a = (float*)act;
        for (int i = 0; i < n; i++) a[i] = HalfConvert.BF16ToF32(HalfConvert.F32ToBF16(x[i]));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeActivations256(float* x, byte* act, int n)
    {
        float* a = (float*)act;
        int i = 0;
        for (; i + 8 <= n; i += 8) (HalfConvert.F32ToBF16(Vector256.Load(x + i)) << 16).AsSingle().Store(a + i);
        for (; i < n; i++) a[i] = HalfConvert.BF16ToF32(HalfConvert.F32ToBF16(x[i]));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeActivations512(float* x, byte* act, int n)
    {
        float* a = (float*)act;
        int i = 0;
        for (; i + 16 <= n; i += 16) (HalfConvert.F32ToBF16(Vector512.Load(x + i)) << 16).AsSingle().Store(a + i);
        for (; i < n; i++) a[i] = HalfConvert.BF16ToF32(HalfConvert.F32ToBF16(x[i]));
    }

    public static void QuantizeRowBF16Reference(float* x, byte* y, int n)
    {
        for (int i = 0; i < n; i++) ((ushort*)y)[i] = HalfConvert.F32ToBF16(x[i]);
    }

    private static void QuantizeRowBF16_256(float* x, byte* y, int n)
    {
        ushort* o = (ushort*)y;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Vector256.Narrow(HalfConvert.F32ToBF16(Vector256.Load(x + i)), HalfConvert.F32ToBF16(Vector256.Load(x + i + 8)))
                .Store(o + i);
        }
        for (; i < n; i++) o[i] = HalfConvert.F32ToBF16(x[i]);
    }

    private static void QuantizeRowBF16_512(float* x, byte* y, int n)
    {
        ushort* o = (ushort*)y;
        int i = 0;
        for (; i + 16 <= n; i += 16) Avx512F.ConvertToVector256UInt16(HalfConvert.F32ToBF16(Vector512.Load(x + i))).Store(o + i);
        for (; i < n; i++) o[i] = HalfConvert.F32ToBF16(x[i]);
    }

    public static void DequantizeRowBF16Reference(byte* x, float* y, int n)
    {
        for (int i = 0; i < n; i++) y[i] = HalfConvert.BF16ToF32(((ushort*)x)[i]);
    }

    private static void DequantizeRowBF16_256(byte* x, float* y, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8) Row.Load8(x, i).Store(y + i);
        for (; i < n; i++) y[i] = Row.Load(x, i);
    }

    private static void DequantizeRowBF16_512(byte* x, float* y, int n)
    {
        int i = 0;
        for (; i + 16 <= n; i += 16) Row.Load16(x, i).Store(y + i);
        for (; i < n; i++) y[i] = Row.Load(x, i);
    }

    public static TypeKernels Create(SimdLevel level) => new()
    {
        Type = GgmlType.BF16,
        VecDotType = GgmlType.BF16,
        ActivationRowBytes = &FloatDot.ActivationRowBytes,
        ActivationsToFloat = &FloatDot.ActivationsToFloat,
        QuantizeActivations = level switch
        {
            SimdLevel.V512 => &QuantizeActivations512,
            SimdLevel.V256 => &QuantizeActivations256,
            _ => &QuantizeActivationsScalar,
        },
        Dot = level switch
        {
            SimdLevel.V512 => &FloatDot.Dot512<Row>,
            SimdLevel.V256 => &FloatDot.Dot256<Row>,
            SimdLevel.V128 or SimdLevel.V128Dot => &FloatDot.Dot128<Row>,
            _ => &FloatDot.DotScalar<Row>,
        },
        TileTokens = 4,
        DotTile = level switch
        {
            SimdLevel.V512 => &FloatDot.Dot4_512<Row>,
            SimdLevel.V256 => &FloatDot.Dot4_256<Row>,
            SimdLevel.V128 or SimdLevel.V128Dot => &FloatDot.Dot4_128<Row>,
            _ => &FloatDot.Dot4Scalar<Row>,
        },
        DequantizeRow = level switch
        {
            SimdLevel.V512 => &DequantizeRowBF16_512,
            SimdLevel.V256 => &DequantizeRowBF16_256,
            _ => &DequantizeRowBF16Reference,
        },
        QuantizeRow = level switch
        {
            SimdLevel.V512 => &QuantizeRowBF16_512,
            SimdLevel.V256 => &QuantizeRowBF16_256,
            _ => &QuantizeRowBF16Reference,
        },
    };
}
