// Conversions between float and the 16-bit float formats F16 (IEEE half) and BF16, scalar and vector.
// BF16 rounding is ggml's ggml_compute_fp32_to_bf16: round to nearest even, NaN kept quiet.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

internal static class HalfConvert
{
    // ---- scalar ----

    /// <summary>Exact, and inlined without a call (a call inside a kernel loop makes the JIT spill vector accumulators).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F16ToF32(ushort h)
    {
        int t = ((h << 16) >> 3) & F16Mask;
        return (t & F16ExpMask) == F16ExpMask
            ? BitConverter.Int32BitsToSingle(t | F32ExpMask)
            : BitConverter.Int32BitsToSingle(t) * BitConverter.Int32BitsToSingle(Pow2_112);
    }

    /// <summary>Round to nearest even (as F16C's vcvtps2ph and ggml's GGML_FP32_TO_FP16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToF16(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>
    /// f rounded to the nearest F16 value, as a float: F16ToF32(F32ToF16(f)). In the F16 normal range the float's
    /// mantissa is rounded to 10 bits in the integers (ties to even); elsewhere (subnormal halves, overflow, NaN) it
    /// goes through the conversions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundToF16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        // float exponents 113..142 are the F16 normals 2^-14 .. 2^15
        if (((bits >> 23) & 0xFF) - 113u < 30u)
        {
            uint r = (bits + 0xFFF + ((bits >> 13) & 1)) & ~0x1FFFu;
            if (((r >> 23) & 0xFF) != 143) return BitConverter.UInt32BitsToSingle(r); // 143: rounded up past 65504, F16's Inf
        }
        return F16ToF32(F32ToF16(f));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BF16ToF32(ushort h) => BitConverter.Int32BitsToSingle(h << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToBF16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64); // NaN: force quiet
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    // ---- vector: 16-bit values sit in the low half of each 32-bit lane (upper half ignored) ----

    private const int F16Mask = unchecked((int)0x8FFFE000); // sign, 5 exponent bits at 27..23, 10 mantissa bits at 22..13
    private const int F16ExpMask = 0x0F800000;
    private const int F32ExpMask = 0x7F800000;
    private const int Pow2_112 = 0x77800000; // 2^112 = 2^(127-15), rebiases a half exponent to a float one

    /// <summary>
    /// Exact F16 to F32: shift the half into float position (sign at 31, exponent 5 bits at 27..23), rescale by 2^112,
    /// which also turns half subnormals (float subnormals here) into normals; Inf/NaN get the all-ones exponent.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> F16ToF32(Vector512<int> h)
    {
        Vector512<int> t = Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(h, 16), 3) & Vector512.Create(F16Mask);
        Vector512<float> f = t.AsSingle() * Vector512.Create(Pow2_112).AsSingle();
        Vector512<int> special = Vector512.Equals(t & Vector512.Create(F16ExpMask), Vector512.Create(F16ExpMask));
        return Vector512.ConditionalSelect(special, (t | Vector512.Create(F32ExpMask)), f.AsInt32()).AsSingle();
    }

    /// <summary>As <see cref="F16ToF32(Vector512{int})"/> for finite halves only (Inf/NaN come out as finite garbage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> F16ToF32Finite(Vector512<int> h) =>
        (Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(h, 16), 3) & Vector512.Create(F16Mask)).AsSingle()
        * Vector512.Create(Pow2_112).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> F16ToF32Finite(Vector128<int> h) =>
        (Vector128.ShiftRightArithmetic(Vector128.ShiftLeft(h, 16), 3) & Vector128.Create(F16Mask)).AsSingle()
        * Vector128.Create(Pow2_112).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> F16ToF32(Vector128<int> h)
    {
        Vector128<int> t = Vector128.ShiftRightArithmetic(Vector128.ShiftLeft(h, 16), 3) & Vector128.Create(F16Mask);
        Vector128<float> f = t.AsSingle() * Vector128.Create(Pow2_112).AsSingle();
        Vector128<int> special = Vector128.Equals(t & Vector128.Create(F16ExpMask), Vector128.Create(F16ExpMask));
        return Vector128.ConditionalSelect(special, (t | Vector128.Create(F32ExpMask)), f.AsInt32()).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> F16ToF32Finite(Vector256<int> h) =>
        (Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(h, 16), 3) & Vector256.Create(F16Mask)).AsSingle()
        * Vector256.Create(Pow2_112).AsSingle();

    /// <summary>Whether any of n halves is Inf or NaN (all-ones exponent): one shift and one max per 16-32 values.</summary>
    public static unsafe bool AnyF16InfOrNaN(ushort* h, int n)
    {
        // with the sign shifted out, Inf/NaN are exactly the values >= 0xF800
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<ushort> m0 = default, m1 = default;
            for (; i + 64 <= n; i += 64)
            {
                m0 = Vector512.Max(m0, Vector512.Load(h + i) << 1);
                m1 = Vector512.Max(m1, Vector512.Load(h + i + 32) << 1);
            }
            for (; i + 32 <= n; i += 32) m0 = Vector512.Max(m0, Vector512.Load(h + i) << 1);
            if (Vector512.GreaterThanOrEqualAny(Vector512.Max(m0, m1), Vector512.Create((ushort)0xF800))) return true;
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<ushort> m = default;
            for (; i + 16 <= n; i += 16) m = Vector256.Max(m, Vector256.Load(h + i) << 1);
            if (Vector256.GreaterThanOrEqualAny(m, Vector256.Create((ushort)0xF800))) return true;
        }
        for (; i < n; i++)
        {
            if ((ushort)(h[i] << 1) >= 0xF800) return true;
        }
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> F16ToF32(Vector256<int> h)
    {
        Vector256<int> t = Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(h, 16), 3) & Vector256.Create(F16Mask);
        Vector256<float> f = t.AsSingle() * Vector256.Create(Pow2_112).AsSingle();
        Vector256<int> special = Vector256.Equals(t & Vector256.Create(F16ExpMask), Vector256.Create(F16ExpMask));
        return Vector256.ConditionalSelect(special, (t | Vector256.Create(F32ExpMask)), f.AsInt32()).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> BF16ToF32(Vector512<int> h) => Vector512.ShiftLeft(h, 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> BF16ToF32(Vector256<int> h) => Vector256.ShiftLeft(h, 16).AsSingle();

    /// <summary>F32 to BF16 bits (in the low half of each lane), as <see cref="F32ToBF16(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> F32ToBF16(Vector512<float> f)
    {
        Vector512<uint> u = f.AsUInt32();
        Vector512<uint> rounded = (u + Vector512.Create(0x7fffu) + ((u >> 16) & Vector512<uint>.One)) >> 16;
        Vector512<uint> nan = Vector512.GreaterThan(u & Vector512.Create(0x7fffffffu), Vector512.Create(0x7f800000u));
        return Vector512.ConditionalSelect(nan, (u >> 16) | Vector512.Create(64u), rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> F32ToBF16(Vector256<float> f)
    {
        Vector256<uint> u = f.AsUInt32();
        Vector256<uint> rounded = (u + Vector256.Create(0x7fffu) + ((u >> 16) & Vector256<uint>.One)) >> 16;
        Vector256<uint> nan = Vector256.GreaterThan(u & Vector256.Create(0x7fffffffu), Vector256.Create(0x7f800000u));
        return Vector256.ConditionalSelect(nan, (u >> 16) | Vector256.Create(64u), rounded);
    }
}
