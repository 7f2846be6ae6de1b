// IQ4_XS weights with Q8_K activations, two groups of 32 at a time. 32 bytes of nibbles hold groups g and g + 1: their
// low nibbles are values 0..15 of each (one per 128-bit lane) and their high nibbles values 16..31. Read that way, one
// vpshufb through the codebook gives 16 values of each group, and the pair's two scales sit one per lane, so one vpshufb
// of the block's scales serves both groups. The activations are kept in the same order (Q8_KAligned's values with
// each 64's second and third 16 swapped: [0..15, 32..47, 16..31, 48..63]), so they load contiguously. Per pair of
// groups that is 3 shuffles where IqKernels' group-at-a-time form needs 8 (Zen 4 has two shuffle ports): 1.3x the
// single-token dot from cache.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Iq4XsKernels
{
    private const int BlockBytes = 136, ActBlockBytes = Q8_KAligned.BlockBytes;

    // ---- activations: Q8_KAligned, each 64 values reordered to [0..15, 32..47, 16..31, 48..63] ----

    /// <summary>Swaps the second and third 16 bytes of every 64 (the reorder is its own inverse).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Reorder(byte* q, int n)
    {
        for (int b = 0; b < n / 256; b++, q += ActBlockBytes)
        {
            for (int c = 0; c < 256; c += 64)
            {
                Vector128<byte> second = Vector128.Load(q + c + 16), third = Vector128.Load(q + c + 32);
                third.Store(q + c + 16);
                second.Store(q + c + 32);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Quantize(float* x, byte* y, int n)
    {
        Q8_KAligned.Quantize(x, y, n);
        Reorder(y, n);
    }

    public static void ToFloat(byte* act, float* y, int n)
    {
        long bytes = Q8_KAligned.RowBytes(n);
        byte* tmp = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        try
        {
            Buffer.MemoryCopy(act, tmp, bytes, bytes);
            Reorder(tmp, n);
            Q8_KAligned.ToFloat(tmp, y, n);
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(tmp);
        }
    }

    /// <summary>An activation row of this layout back in ggml's block_q8_K layout (tests hold the dots to ggml's over it).</summary>
    public static void ToGgml(byte* act, byte* dst, int n)
    {
        long bytes = Q8_KAligned.RowBytes(n);
        byte* tmp = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        try
        {
            Buffer.MemoryCopy(act, tmp, bytes, bytes);
            Reorder(tmp, n);
            Q8_KAligned.ToGgml(tmp, dst, n);
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(tmp);
        }
    }

    // ---- weights ----

    /// <summary>vpshufb mask that spreads int16 lane 2p of the low 128-bit lane and 2p + 1 of the high one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> PairMask(int p) =>
        Vector256.Create(Vector128.Create((ushort)(4 * p | (4 * p + 1) << 8)), Vector128.Create((ushort)(4 * p + 2 | (4 * p + 3) << 8))).AsByte();

    /// <summary>
    /// The constants of the dots, created in each dot's own body (not in a constructor or inlinee: the JIT leaves a
    /// struct constructor called from an AggressiveOptimization method uninlined, and rebuilds constants created in an
    /// inlinee at each use).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Values() =>
        Vector256.Create(Vector128.Create((sbyte)-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));

    /// <summary>
    /// Groups 2p and 2p + 1 of a block: their low-nibble values (first 16 of each, one group per lane) and high-nibble
    /// values, and the two scales (one per lane).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair(byte* w, int p, Vector256<short> scales, Vector256<sbyte> values, Vector256<byte> m4, Vector256<byte> mask,
        out Vector256<sbyte> lo, out Vector256<sbyte> hi, out Vector256<short> scale)
    {
        Vector256<byte> q = Vector256.Load(w + 8 + 32 * p);
        lo = Avx2.Shuffle(values, (q & m4).AsSByte());
        hi = Avx2.Shuffle(values, (Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4).AsSByte());
        scale = Avx2.Shuffle(scales.AsByte(), mask).AsInt16();
    }

    /// <summary>Signed weights v against the activations at y (reordered): 16 int16 pair sums of v·y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Products(Vector256<sbyte> v, sbyte* y) =>
        Avx2.MultiplyAddAdjacent(Avx2.Abs(v), Avx2.Sign(Vector256.Load(y), v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> PairDot(byte* w, int p, Vector256<short> scales, Vector256<sbyte> values, Vector256<byte> m4,
        Vector256<byte> mask, sbyte* y)
    {
        Pair(w, p, scales, values, m4, mask, out var lo, out var hi, out var sc);
        return Avx2.MultiplyAddAdjacent(Products(lo, y + 64 * p), sc) + Avx2.MultiplyAddAdjacent(Products(hi, y + 64 * p + 32), sc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockDot(byte* w, byte* act, Vector256<sbyte> values, Vector256<byte> m4,
        Vector256<byte> p0, Vector256<byte> p1, Vector256<byte> p2, Vector256<byte> p3)
    {
        Vector256<short> scales = Iq4XsGroups.Scales(w);
        var y = (sbyte*)act;
        return PairDot(w, 0, scales, values, m4, p0, y) + PairDot(w, 1, scales, values, m4, p1, y)
            + PairDot(w, 2, scales, values, m4, p2, y) + PairDot(w, 3, scales, values, m4, p3, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* w, byte* act) => BlockScale.F16ToF32(*(ushort*)w) * *(float*)(act + Q8_KAligned.D);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(byte* w, byte* act, int n)
    {
        Vector256<sbyte> values = Values();
        Vector256<byte> m4 = Vector256.Create((byte)0x0F), p0 = PairMask(0), p1 = PairMask(1), p2 = PairMask(2), p3 = PairMask(3);
        Vector256<float> acc = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, act += ActBlockBytes)
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w, act)), Avx.ConvertToVector256Single(BlockDot(w, act, values, m4, p0, p1, p2, p3)), acc);
        return Vector256.Sum(acc);
    }

    /// <summary>Two rows wStride bytes apart against one activation row: y[0], y[yStride], each bit for bit <see cref="Dot"/>'s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot2(byte* w, long wStride, byte* act, int n, float* y, long yStride)
    {
        Vector256<sbyte> values = Values();
        Vector256<byte> m4 = Vector256.Create((byte)0x0F), p0 = PairMask(0), p1 = PairMask(1), p2 = PairMask(2), p3 = PairMask(3);
        Vector256<float> acc0 = default, acc1 = default;
        byte* w1 = w + wStride;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, w1 += BlockBytes, act += ActBlockBytes)
        {
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w, act)), Avx.ConvertToVector256Single(BlockDot(w, act, values, m4, p0, p1, p2, p3)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w1, act)), Avx.ConvertToVector256Single(BlockDot(w1, act, values, m4, p0, p1, p2, p3)), acc1);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
    }

    /// <summary>A pair of groups against one token (block start a): scale · Σ v·y in 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> TokenDot(Vector256<sbyte> lo, Vector256<byte> loAbs, Vector256<sbyte> hi, Vector256<byte> hiAbs,
        Vector256<short> sc, byte* a, int p)
    {
        var y = (sbyte*)a + 64 * p;
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(loAbs, Avx2.Sign(Vector256.Load(y), lo)), sc)
            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hiAbs, Avx2.Sign(Vector256.Load(y + 32), hi)), sc);
    }

    /// <summary>One row against 4 tokens actStride bytes apart; each pair of groups unpacked once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        Vector256<sbyte> values = Values();
        Vector256<byte> m4 = Vector256.Create((byte)0x0F);
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            byte* a0 = act + (long)i * ActBlockBytes, a1 = a0 + actStride, a2 = a1 + actStride, a3 = a2 + actStride;
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            Vector256<short> scales = Iq4XsGroups.Scales(w);
            for (int p = 0; p < 4; p++)
            {
                Pair(w, p, scales, values, m4, PairMask(p), out var lo, out var hi, out var sc);
                Vector256<byte> la = Avx2.Abs(lo), ha = Avx2.Abs(hi);
                s0 += TokenDot(lo, la, hi, ha, sc, a0, p);
                s1 += TokenDot(lo, la, hi, ha, sc, a1, p);
                s2 += TokenDot(lo, la, hi, ha, sc, a2, p);
                s3 += TokenDot(lo, la, hi, ha, sc, a3, p);
            }
            float d = BlockScale.F16ToF32(*(ushort*)w);
            f0 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a0 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s0), f0);
            f1 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a1 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s1), f1);
            f2 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a2 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s2), f2);
            f3 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a3 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s3), f3);
        }
        y[0] = Vector256.Sum(f0);
        y[yStride] = Vector256.Sum(f1);
        y[2 * yStride] = Vector256.Sum(f2);
        y[3 * yStride] = Vector256.Sum(f3);
    }

    /// <summary>As <see cref="Dot4"/> with 8 tokens (AVX-512 machines: 32 vector registers hold the sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        Vector256<sbyte> values = Values();
        Vector256<byte> m4 = Vector256.Create((byte)0x0F);
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            byte* a0 = act + (long)i * ActBlockBytes, a1 = a0 + actStride, a2 = a1 + actStride, a3 = a2 + actStride;
            byte* a4 = a3 + actStride, a5 = a4 + actStride, a6 = a5 + actStride, a7 = a6 + actStride;
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            Vector256<short> scales = Iq4XsGroups.Scales(w);
            for (int p = 0; p < 4; p++)
            {
                Pair(w, p, scales, values, m4, PairMask(p), out var lo, out var hi, out var sc);
                Vector256<byte> la = Avx2.Abs(lo), ha = Avx2.Abs(hi);
                s0 += TokenDot(lo, la, hi, ha, sc, a0, p);
                s1 += TokenDot(lo, la, hi, ha, sc, a1, p);
                s2 += TokenDot(lo, la, hi, ha, sc, a2, p);
                s3 += TokenDot(lo, la, hi, ha, sc, a3, p);
                s4 += TokenDot(lo, la, hi, ha, sc, a4, p);
                s5 += TokenDot(lo, la, hi, ha, sc, a5, p);
                s6 += TokenDot(lo, la, hi, ha, sc, a6, p);
                s7 += TokenDot(lo, la, hi, ha, sc, a7, p);
            }
            float d = BlockScale.F16ToF32(*(ushort*)w);
            f0 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a0 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s0), f0);
            f1 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a1 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s1), f1);
            f2 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a2 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s2), f2);
            f3 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a3 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s3), f3);
            f4 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a4 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s4), f4);
            f5 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a5 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s5), f5);
            f6 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a6 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s6), f6);
            f7 = Vector256.FusedMultiplyAdd(Vector256.Create(d * *(float*)(a7 + Q8_KAligned.D)), Avx.ConvertToVector256Single(s7), f7);
        }
        y[0] = Vector256.Sum(f0);
        y[yStride] = Vector256.Sum(f1);
        y[2 * yStride] = Vector256.Sum(f2);
        y[3 * yStride] = Vector256.Sum(f3);
        y[4 * yStride] = Vector256.Sum(f4);
        y[5 * yStride] = Vector256.Sum(f5);
        y[6 * yStride] = Vector256.Sum(f6);
        y[7 * yStride] = Vector256.Sum(f7);
    }

    /// <summary>Whether k keeps its activations in this layout (the SIMD IQ4_XS kernels are the only ones that do).</summary>
    public static bool IsUsedBy(in TypeKernels k) => k.Type == GgmlType.IQ4_XS && k.Dot2 != null;

    public static TypeKernels Create(SimdLevel level)
    {
        var k = QuantBlockKernels.Create<IQ4_XSBlock>();
        if (level == SimdLevel.Scalar) return k;
        // the 128-bit levels keep ggml's block_q8_K order (no reordered activations, no two-row dot)
        if (level is SimdLevel.V128 or SimdLevel.V128Dot) return Vector128IqDots.Groups<Iq4XsGroups>(k, level);
        k = Q8_KAligned.Use(k) with { QuantizeActivations = &Quantize, ActivationsToFloat = &ToFloat, Dot = &Dot, Dot2 = &Dot2 };
        return level == SimdLevel.V512 ? k with { DotTile = &Dot8, TileTokens = 8 } : k with { DotTile = &Dot4, TileTokens = 4 };
    }
}
