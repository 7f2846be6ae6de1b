// F32 weights: activations are used as they are (ggml's vec_dot_type for F32 is F32).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class F32Kernels
{
    private readonly struct Row : IFloatRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load(byte* row, int i) => ((float*)row)[i];

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load4(byte* row, int i) => Vector128.Load((float*)row + i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(byte* row, int i) => Vector256.Load((float*)row + i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, int i) => Vector512.Load((float*)row + i);
    }

    /// <summary>ggml's vec_dot_f32 without SIMD.</summary>
    public static float VecDotF32Reference(int n, float* x, float* y) => FloatDot.DotScalar<Row>((byte*)x, (byte*)y, n);

    private static void Copy(float* src, byte* dst, int n) => Buffer.MemoryCopy(src, dst, (long)n * 4, (long)n * 4);

    private static void Copy(byte* src, float* dst, int n) => Buffer.MemoryCopy(src, dst, (long)n * 4, (long)n * 4);

    public static TypeKernels Create(SimdLevel level) => new()
    {
        Type = GgmlType.F32,
        VecDotType = GgmlType.F32,
        ActivationRowBytes = &FloatDot.ActivationRowBytes,
        ActivationsToFloat = &FloatDot.ActivationsToFloat,
        QuantizeActivations = null,
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
        DequantizeRow = &Copy,
        QuantizeRow = &Copy,
    };
}
