// The F16 block scales (d, dmin) of the K-quant and Q4_0 kernels, converted without float arithmetic on subnormals.
// HalfConvert.F16ToF32 rescales the half's bits by 2^112, which for a subnormal half (below 6.1e-5) multiplies a
// subnormal float: a microcode assist of tens of cycles. K-quant super-block scales are often that small (a Q6_K d is
// ~max|w|/4000, a Q4_K d ~max|w|/950), and a single-thread Q6_K dot spent over half its time there.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal static class BlockScale
{
    /// <summary>
    /// Exact F16 to F32 of the low 16 bits of each lane, branch-free: normals by rebiasing the exponent in the integers,
    /// subnormals as (float)mantissa · 2^-24 (an exact product of normals), Inf/NaN with the all-ones exponent.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> F16ToF32(Vector128<int> h)
    {
        Vector128<int> a = h & Vector128.Create(0x7fff);
        Vector128<int> normal = Vector128.ShiftLeft(a, 13) + Vector128.Create(112 << 23);
        Vector128<int> sub = (Vector128.ConvertToSingle(a) * Vector128.Create(1f / (1 << 24))).AsInt32();
        Vector128<int> special = Vector128.ShiftLeft(a, 13) | Vector128.Create(0x7F800000);
        Vector128<int> r = Vector128.ConditionalSelect(Vector128.LessThan(a, Vector128.Create(0x400)), sub,
            Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(a, Vector128.Create(0x7c00)), special, normal));
        return (r | Vector128.ShiftLeft(h & Vector128.Create(0x8000), 16)).AsSingle();
    }

    /// <summary>As <see cref="F16ToF32(Vector128{int})"/>, 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> F16ToF32(Vector512<int> h)
    {
        Vector512<int> a = h & Vector512.Create(0x7fff);
        Vector512<int> normal = Vector512.ShiftLeft(a, 13) + Vector512.Create(112 << 23);
        Vector512<int> sub = (Vector512.ConvertToSingle(a) * Vector512.Create(1f / (1 << 24))).AsInt32();
        Vector512<int> special = Vector512.ShiftLeft(a, 13) | Vector512.Create(0x7F800000);
        Vector512<int> r = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(0x400)), sub,
            Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(a, Vector512.Create(0x7c00)), special, normal));
        return (r | Vector512.ShiftLeft(h & Vector512.Create(0x8000), 16)).AsSingle();
    }

    /// <summary>The 8 F16 values at p as F32, as <see cref="F16ToF32(Vector128{int})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<float> F16x8ToF32(ushort* p) =>
        Vector256.Create(F16ToF32(Sse41.ConvertToVector128Int32(p).AsInt32()), F16ToF32(Sse41.ConvertToVector128Int32(p + 4).AsInt32()));

    /// <summary>
    /// One F16 value, exact, in the scalar units (beside a kernel's vector work: the vector form above took 14 vector
    /// operations per block from the dots it served): normals rebiased in the integers, zero and subnormals as the
    /// mantissa times 2^-24 (normal floats), Inf and NaN with the all-ones exponent. Small enough for the JIT to inline
    /// into the unrolled kernels (the runtime's Half conversion was left as a call there, spilling every vector register).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F16ToF32(ushort h)
    {
        uint a = (uint)(h & 0x7fff);
        float m = a >= 0x400 ? BitConverter.UInt32BitsToSingle((a << 13) + (a >= 0x7c00 ? 224u << 23 : 112u << 23)) : a * (1f / (1 << 24));
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(m) | (uint)(h & 0x8000) << 16);
    }
}
