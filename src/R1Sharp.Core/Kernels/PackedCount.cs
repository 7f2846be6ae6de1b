// Row, group and token counts of the packed and interleaved kernels as types, so that each instantiation of a generic kernel
// is compiled for its count and keeps only the accumulators it uses (no loops over arrays of vectors), and the lane
// layout they share: 4 tokens interleaved per 32-bit lane inside each 128-bit lane.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal interface IPackedCount { static abstract int Count { get; } }

internal struct Count1 : IPackedCount { public static int Count => 1; }
internal struct Count2 : IPackedCount { public static int Count => 2; }
internal struct Count3 : IPackedCount { public static int Count => 3; }
internal struct Count4 : IPackedCount { public static int Count => 4; }
internal struct Count5 : IPackedCount { public static int Count => 5; }
internal struct Count6 : IPackedCount { public static int Count => 6; }
internal struct Count7 : IPackedCount { public static int Count => 7; }
internal struct Count8 : IPackedCount { public static int Count => 8; }

internal static unsafe class PackedLayout
{
    /// <summary>Folds the 4 128-bit lanes of a packed accumulator (lane 4L + t: part of token t's dot) into y[t * yStride].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* y, long yStride, Vector512<float> acc)
    {
        Vector256<float> h = acc.GetLower() + acc.GetUpper();
        Vector128<float> t = h.GetLower() + h.GetUpper();
        y[0] = t.ToScalar();
        y[yStride] = t.GetElement(1);
        y[2 * yStride] = t.GetElement(2);
        y[3 * yStride] = t.GetElement(3);
    }

    /// <summary>
    /// Interleaves 4 tokens' rows t0..t3 into dst[0..3]: a 4×4 transpose of 32-bit lanes inside each 128-bit lane, so
    /// that lane 4L + t of dst[k] holds token t's lane 4L + k (the layout of every packed activation group).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave4(Vector512<int> t0, Vector512<int> t1, Vector512<int> t2, Vector512<int> t3, Vector512<int>* dst)
    {
        Vector512<long> lo01 = Avx512F.UnpackLow(t0, t1).AsInt64(), hi01 = Avx512F.UnpackHigh(t0, t1).AsInt64();
        Vector512<long> lo23 = Avx512F.UnpackLow(t2, t3).AsInt64(), hi23 = Avx512F.UnpackHigh(t2, t3).AsInt64();
        dst[0] = Avx512F.UnpackLow(lo01, lo23).AsInt32();
        dst[1] = Avx512F.UnpackHigh(lo01, lo23).AsInt32();
        dst[2] = Avx512F.UnpackLow(hi01, hi23).AsInt32();
        dst[3] = Avx512F.UnpackHigh(hi01, hi23).AsInt32();
    }
}
