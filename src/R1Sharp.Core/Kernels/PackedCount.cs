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

/// <summary>An interleaved group kernel compiled per token count (1 to 8).</summary>
internal unsafe interface IInterleavedDot
{
    static abstract void Run<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount;
}

internal static unsafe class InterleavedDot
{
    /// <summary>K's kernel for <paramref name="tokens"/> (1 to 8; TypeKernels.DotInterleaved's arguments).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ForTokens<K>(byte* w, byte* act, long actStride, int tokens, int n, float* y, long yStride) where K : IInterleavedDot
    {
        switch (tokens)
        {
            case 8: K.Run<Count8>(w, act, actStride, n, y, yStride); break;
            case 7: K.Run<Count7>(w, act, actStride, n, y, yStride); break;
            case 6: K.Run<Count6>(w, act, actStride, n, y, yStride); break;
            case 5: K.Run<Count5>(w, act, actStride, n, y, yStride); break;
            case 4: K.Run<Count4>(w, act, actStride, n, y, yStride); break;
            case 3: K.Run<Count3>(w, act, actStride, n, y, yStride); break;
            case 2: K.Run<Count2>(w, act, actStride, n, y, yStride); break;
            default: K.Run<Count1>(w, act, actStride, n, y, yStride); break;
        }
    }
}

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

    /// <summary>
    /// One 64-value chunk of 1 or 2 rows (TR) against 1 to 4 packed token groups (TG) groupStride bytes apart from a:
    /// x0 and x1 hold each row's 64 values as unsigned bytes (4 per dword lane: lane L is values 4L..4L+3 of the
    /// chunk's 16-value quarters), s0 and s1 each row's int16 scales in the packed lane order, and TC's chunk math
    /// adds row r's products with group g into i_rg.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Chunk<TR, TG, TC>(Vector512<int> x0, Vector512<int> x1, Vector512<short> s0, Vector512<short> s1, sbyte* a, long groupStride,
        ref Vector512<int> i00, ref Vector512<int> i01, ref Vector512<int> i02, ref Vector512<int> i03,
        ref Vector512<int> i10, ref Vector512<int> i11, ref Vector512<int> i12, ref Vector512<int> i13)
        where TR : struct, IPackedCount where TG : struct, IPackedCount where TC : struct, IPackedChunk
    {
        Vector512<byte> u0 = Avx512F.Shuffle(x0, 0x00).AsByte(), u1 = Avx512F.Shuffle(x0, 0x55).AsByte();
        Vector512<byte> u2 = Avx512F.Shuffle(x0, 0xAA).AsByte(), u3 = Avx512F.Shuffle(x0, 0xFF).AsByte();
        Vector512<byte> v0 = default, v1 = default, v2 = default, v3 = default;
        if (TR.Count > 1)
        {
            v0 = Avx512F.Shuffle(x1, 0x00).AsByte();
            v1 = Avx512F.Shuffle(x1, 0x55).AsByte();
            v2 = Avx512F.Shuffle(x1, 0xAA).AsByte();
            v3 = Avx512F.Shuffle(x1, 0xFF).AsByte();
        }
        Group<TR, TC>(u0, u1, u2, u3, v0, v1, v2, v3, s0, s1, a, ref i00, ref i10);
        if (TG.Count > 1) Group<TR, TC>(u0, u1, u2, u3, v0, v1, v2, v3, s0, s1, a + groupStride, ref i01, ref i11);
        if (TG.Count > 2) Group<TR, TC>(u0, u1, u2, u3, v0, v1, v2, v3, s0, s1, a + 2 * groupStride, ref i02, ref i12);
        if (TG.Count > 3) Group<TR, TC>(u0, u1, u2, u3, v0, v1, v2, v3, s0, s1, a + 3 * groupStride, ref i03, ref i13);
    }

    /// <summary>The chunk of row 0 (u) and row 1 (v, when TR has 2) against one token group's activations at a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Group<TR, TC>(Vector512<byte> u0, Vector512<byte> u1, Vector512<byte> u2, Vector512<byte> u3,
        Vector512<byte> v0, Vector512<byte> v1, Vector512<byte> v2, Vector512<byte> v3, Vector512<short> s0, Vector512<short> s1,
        sbyte* a, ref Vector512<int> i0, ref Vector512<int> i1) where TR : struct, IPackedCount where TC : struct, IPackedChunk
    {
        Vector512<sbyte> a0 = Vector512.Load(a), a1 = Vector512.Load(a + 64), a2 = Vector512.Load(a + 128), a3 = Vector512.Load(a + 192);
        i0 += TC.Chunk(u0, u1, u2, u3, a0, a1, a2, a3, s0);
        if (TR.Count > 1) i1 += TC.Chunk(v0, v1, v2, v3, a0, a1, a2, a3, s1);
    }
}

/// <summary>
/// A K-quant's chunk math in the packed kernels: one row's 4 value quarters (unsigned) against a group's 4 activation
/// quarters, lane 4L + t getting the scale of quarter-lane L times token t's dot over its 16 values.
/// </summary>
internal interface IPackedChunk
{
    static abstract Vector512<int> Chunk(Vector512<byte> u0, Vector512<byte> u1, Vector512<byte> u2, Vector512<byte> u3,
        Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3, Vector512<short> scales);
}
