// Dot products of a float-format weight row (F32, F16 or BF16, read through IFloatRow) with F32 activation rows.
// One generic body per SIMD level; the JIT specializes it per row format, so the load-and-convert is inlined.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// <summary>How to read values of one float format from a row.</summary>
internal unsafe interface IFloatRow
{
    static abstract float Load(byte* row, int i);
    /// <summary>Values i..i+3 as floats (the 128-bit level: ARM64's AdvSimd).</summary>
    static abstract Vector128<float> Load4(byte* row, int i);
    /// <summary>Values i..i+7 as floats.</summary>
    static abstract Vector256<float> Load8(byte* row, int i);
    /// <summary>Values i..i+15 as floats.</summary>
    static abstract Vector512<float> Load16(byte* row, int i);
}

internal static unsafe class FloatDot
{
    /// <summary>Scalar: float products summed in double, as ggml's scalar vec_dot_f16/bf16/f32.</summary>
    public static float DotScalar<T>(byte* w, byte* act, int n) where T : IFloatRow
    {
        float* x = (float*)act;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += T.Load(w, i) * x[i];
        return (float)sum;
    }

    public static void Dot4Scalar<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : IFloatRow
    {
        for (int t = 0; t < 4; t++) y[t * yStride] = DotScalar<T>(w, act + t * actStride, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256<T>(byte* w, byte* act, int n) where T : IFloatRow
    {
        float* x = (float*)act;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            a0 = Vector256.FusedMultiplyAdd(T.Load8(w, i), Vector256.Load(x + i), a0);
            a1 = Vector256.FusedMultiplyAdd(T.Load8(w, i + 8), Vector256.Load(x + i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(T.Load8(w, i + 16), Vector256.Load(x + i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(T.Load8(w, i + 24), Vector256.Load(x + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) a0 = Vector256.FusedMultiplyAdd(T.Load8(w, i), Vector256.Load(x + i), a0);
        float sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) sum += T.Load(w, i) * x[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : IFloatRow
    {
        float* x0 = (float*)act, x1 = (float*)(act + actStride), x2 = (float*)(act + 2 * actStride), x3 = (float*)(act + 3 * actStride);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            Vector256<float> wv = T.Load8(w, i);
            a0 = Vector256.FusedMultiplyAdd(wv, Vector256.Load(x0 + i), a0);
            a1 = Vector256.FusedMultiplyAdd(wv, Vector256.Load(x1 + i), a1);
            a2 = Vector256.FusedMultiplyAdd(wv, Vector256.Load(x2 + i), a2);
            a3 = Vector256.FusedMultiplyAdd(wv, Vector256.Load(x3 + i), a3);
        }
        Tail4<T>(w, i, n, x0, x1, x2, x3, Vector256.Sum(a0), Vector256.Sum(a1), Vector256.Sum(a2), Vector256.Sum(a3), y, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot128<T>(byte* w, byte* act, int n) where T : IFloatRow
    {
        float* x = (float*)act;
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            a0 = Vector128.FusedMultiplyAdd(T.Load4(w, i), Vector128.Load(x + i), a0);
            a1 = Vector128.FusedMultiplyAdd(T.Load4(w, i + 4), Vector128.Load(x + i + 4), a1);
            a2 = Vector128.FusedMultiplyAdd(T.Load4(w, i + 8), Vector128.Load(x + i + 8), a2);
            a3 = Vector128.FusedMultiplyAdd(T.Load4(w, i + 12), Vector128.Load(x + i + 12), a3);
        }
        for (; i + 4 <= n; i += 4) a0 = Vector128.FusedMultiplyAdd(T.Load4(w, i), Vector128.Load(x + i), a0);
        float sum = Vector128.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) sum += T.Load(w, i) * x[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_128<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : IFloatRow
    {
        float* x0 = (float*)act, x1 = (float*)(act + actStride), x2 = (float*)(act + 2 * actStride), x3 = (float*)(act + 3 * actStride);
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            Vector128<float> wv = T.Load4(w, i);
            a0 = Vector128.FusedMultiplyAdd(wv, Vector128.Load(x0 + i), a0);
            a1 = Vector128.FusedMultiplyAdd(wv, Vector128.Load(x1 + i), a1);
            a2 = Vector128.FusedMultiplyAdd(wv, Vector128.Load(x2 + i), a2);
            a3 = Vector128.FusedMultiplyAdd(wv, Vector128.Load(x3 + i), a3);
        }
        Tail4<T>(w, i, n, x0, x1, x2, x3, Vector128.Sum(a0), Vector128.Sum(a1), Vector128.Sum(a2), Vector128.Sum(a3), y, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot512<T>(byte* w, byte* act, int n) where T : IFloatRow
    {
        float* x = (float*)act;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            a0 = Vector512.FusedMultiplyAdd(T.Load16(w, i), Vector512.Load(x + i), a0);
            a1 = Vector512.FusedMultiplyAdd(T.Load16(w, i + 16), Vector512.Load(x + i + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(T.Load16(w, i + 32), Vector512.Load(x + i + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(T.Load16(w, i + 48), Vector512.Load(x + i + 48), a3);
        }
        for (; i + 16 <= n; i += 16) a0 = Vector512.FusedMultiplyAdd(T.Load16(w, i), Vector512.Load(x + i), a0);
        float sum = Vector512.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) sum += T.Load(w, i) * x[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_512<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : IFloatRow
    {
        float* x0 = (float*)act, x1 = (float*)(act + actStride), x2 = (float*)(act + 2 * actStride), x3 = (float*)(act + 3 * actStride);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Vector512<float> wv = T.Load16(w, i);
            a0 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x0 + i), a0);
            a1 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x1 + i), a1);
            a2 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x2 + i), a2);
            a3 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x3 + i), a3);
        }
        Tail4<T>(w, i, n, x0, x1, x2, x3, Vector512.Sum(a0), Vector512.Sum(a1), Vector512.Sum(a2), Vector512.Sum(a3), y, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tail4<T>(byte* w, int i, int n, float* x0, float* x1, float* x2, float* x3,
        float s0, float s1, float s2, float s3, float* y, long yStride) where T : IFloatRow
    {
        for (; i < n; i++)
        {
            float wi = T.Load(w, i);
            s0 += wi * x0[i];
            s1 += wi * x1[i];
            s2 += wi * x2[i];
            s3 += wi * x3[i];
        }
        y[0] = s0;
        y[yStride] = s1;
        y[2 * yStride] = s2;
        y[3 * yStride] = s3;
    }

    public static void ActivationsToFloat(byte* act, float* y, int n) => Buffer.MemoryCopy(act, y, (long)n * 4, (long)n * 4);

    /// <summary>Activation rows hold floats, 64-byte aligned.</summary>
    public static long ActivationRowBytes(int n) => ((long)n * sizeof(float) + 63) & ~63L;
}
