// Row and group counts of the packed kernels (Q8_0, Q4_K, Q6_K) as types, so that each instantiation of a generic kernel
// is compiled for its count and keeps only the accumulators it uses (no loops over arrays of vectors).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

internal interface IPackedCount { static abstract int Count { get; } }

internal struct Count1 : IPackedCount { public static int Count => 1; }
internal struct Count2 : IPackedCount { public static int Count => 2; }
internal struct Count3 : IPackedCount { public static int Count => 3; }
internal struct Count4 : IPackedCount { public static int Count => 4; }

internal static unsafe class PackedResults
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
}
