// 256-bit dots of the 32-value legacy blocks that take Q8_0 activations (Q4_0, Q5_0): each type only says how to
// unpack a block into its 32 unsigned values and what offset they are stored with.
//  - The single-token dot reads activations with sums: ggml's block_q8_0 row, then per block d_y (f32), d_y·Σq
//    (f32) and Σq (int32, for the interleaved Q5_0 kernel's exact offset term), written once per activation row. Σ d_w·d_y·Σ (q − offset)·y is then Σ d_w·d_y·Σ q·y (one vpmaddubsw, the
//    unsigned q on the unsigned side, and one vpmaddwd by ones) minus offset·Σ d_w·(d_y·Σq), 8 blocks per vector FMA.
//  - The tile reads the ggml blocks only: vpmaddubsw(q, y) − vpmaddubsw(offset, y); where the activations have sums,
//    the tile is the single-token dot's arithmetic for 4 tokens at once (each block unpacked once), the same bits.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal unsafe interface ILegacyBlock
{
    /// <summary>Bytes of one weight block (f16 d first).</summary>
    static abstract int BlockBytes { get; }

    /// <summary>What the unsigned values are stored above zero (8 for Q4_0, 16 for Q5_0).</summary>
    static abstract byte Offset { get; }

    /// <summary>The 32 unsigned values of the block at <paramref name="block"/>, in value order.</summary>
    static abstract Vector256<byte> Values(byte* block);
}

internal static unsafe class LegacyBlockDot
{
    private const int ActBlockBytes = 34;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> BlockDot<T>(Vector256<byte> q, Vector256<sbyte> y) where T : ILegacyBlock =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(
            Avx2.MultiplyAddAdjacent(q, y) - Avx2.MultiplyAddAdjacent(Vector256.Create(T.Offset), y), Vector256.Create((short)1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w, byte* a) => HalfConvert.F16ToF32(*(ushort*)w) * HalfConvert.F16ToF32(*(ushort*)a);

    private static long Padded(long bytes) => (bytes + 63) & ~63L;

    /// <summary>Bytes of one activation row with sums: the ggml blocks, then d_y, d_y·Σq and Σq per block, each part padded to 64.</summary>
    public static long ActivationRowBytesWithSums(int n) => Padded((long)(n / 32) * ActBlockBytes) + 3 * Padded((long)(n / 32) * sizeof(float));

    /// <summary>Per-block d_y (f32) of an activation row with sums; d_y·Σq follows at the next 64-byte boundary.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float* BlockScales(byte* act, int nb) => (float*)(act + Padded((long)nb * ActBlockBytes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float* BlockSums(float* scales, int nb) => scales + Padded((long)nb * sizeof(float)) / sizeof(float);

    /// <summary>Per-block Σq (int32) of an activation row with sums, after d_y·Σq.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int* BlockIntSums(float* scales, int nb) => (int*)(scales + 2 * (Padded((long)nb * sizeof(float)) / sizeof(float)));

    /// <summary>ggml's quantize_row_q8_0 (bit for bit), then each block's d_y and d_y·Σq.</summary>
    public static void QuantizeWithSums(float* x, byte* act, int n)
    {
        Q8_0Kernels.QuantizeRowQ8_0(x, act, n);
        int nb = n / 32;
        float* d = BlockScales(act, nb), s = BlockSums(d, nb);
        int* si = BlockIntSums(d, nb);
        for (int b = 0; b < nb; b++)
        {
            byte* block = act + (long)b * ActBlockBytes;
            int sum = Sum32(block + 2);
            d[b] = HalfConvert.F16ToF32(*(ushort*)block);
            s[b] = d[b] * sum;
            si[b] = sum;
        }
    }

    /// <summary>The sum of 32 int8 values (a decode step quantizes a few thousand blocks: the scalar loop was 1% of it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Sum32(byte* q)
    {
        if (Avx2.IsSupported)
            return Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256.Create((byte)1), Vector256.Load((sbyte*)q)), Vector256.Create((short)1)));
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += ((sbyte*)q)[j];
        return sum;
    }

    /// <summary>The kernels of a legacy type with its single-token dot reading activations with sums.</summary>
    public static TypeKernels WithSums<T>(in TypeKernels k) where T : ILegacyBlock => k with
    {
        ActivationRowBytes = &ActivationRowBytesWithSums,
        QuantizeActivations = &QuantizeWithSums,
        Dot = &Dot256<T>,
        DotTile = &Dot4WithSums256<T>,
        TileTokens = 4,
    };

    /// <summary>Σ q·y of one block as 8 int32 partial sums, as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> UnsignedDot(Vector256<byte> q, sbyte* y) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(y)), Vector256.Create((short)1)));

    /// <summary>
    /// One weight row against one activation row with sums. Groups of 8 blocks gather their 8 weight scales and convert
    /// them as one vector (scalar conversions were a third of the instructions), then broadcast d_w·d_y per block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256<T>(byte* w, byte* act, int n) where T : ILegacyBlock
    {
        int nb = n / 32, b = 0, bb = T.BlockBytes;
        float* dy = BlockScales(act, nb), sy = BlockSums(dy, nb);
        sbyte* y = (sbyte*)act + 2;
        Vector256<float> acc0 = default, acc1 = default, accOffset = default;
        float* s = stackalloc float[8];
        Vector256<int> lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        for (; b + 8 <= nb; b += 8)
        {
            Vector256<float> dw = HalfConvert.F16ToF32(Avx2.GatherVector256((int*)w, lane * bb, 1));
            (dw * Vector256.Load(dy + b)).Store(s);
            accOffset = Vector256.FusedMultiplyAdd(dw, Vector256.Load(sy + b), accOffset);
            // unrolled: constant offsets instead of index arithmetic per block
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(s[0]), UnsignedDot(T.Values(w), y), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(s[1]), UnsignedDot(T.Values(w + bb), y + ActBlockBytes), acc1);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(s[2]), UnsignedDot(T.Values(w + 2 * bb), y + 2 * ActBlockBytes), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(s[3]), UnsignedDot(T.Values(w + 3 * bb), y + 3 * ActBlockBytes), acc1);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(s[4]), UnsignedDot(T.Values(w + 4 * bb), y + 4 * ActBlockBytes), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(s[5]), UnsignedDot(T.Values(w + 5 * bb), y + 5 * ActBlockBytes), acc1);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(s[6]), UnsignedDot(T.Values(w + 6 * bb), y + 6 * ActBlockBytes), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(s[7]), UnsignedDot(T.Values(w + 7 * bb), y + 7 * ActBlockBytes), acc1);
            w += 8 * bb;
            y += 8 * ActBlockBytes;
        }
        float offset = 0;
        for (; b < nb; b++, w += bb, y += ActBlockBytes)
        {
            float dwb = HalfConvert.F16ToF32(*(ushort*)w);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dwb * dy[b]), UnsignedDot(T.Values(w), y), acc0);
            offset += dwb * sy[b];
        }
        return Vector256.Sum(acc0 + acc1) - T.Offset * (Vector256.Sum(accOffset) + offset);
    }

    /// <summary>
    /// One weight row against 4 activation rows with sums: <see cref="Dot256{T}"/>'s arithmetic for each token (so a
    /// token's result has the same bits in a tile as alone), each block unpacked once for the 4. Against
    /// <see cref="Dot4_256{T}"/>, no scalar f16 conversions and no offset product per block and token: a prefill of
    /// Q5_0 rows (V2-Lite's 1408-wide expert down matrices, about 12 tokens per expert) spends most of its time here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4WithSums256<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : ILegacyBlock
    {
        int nb = n / 32, b = 0, bb = T.BlockBytes;
        byte* a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        float* d0 = BlockScales(act, nb), d1 = BlockScales(a1, nb), d2 = BlockScales(a2, nb), d3 = BlockScales(a3, nb);
        float* s0 = BlockSums(d0, nb), s1 = BlockSums(d1, nb), s2 = BlockSums(d2, nb), s3 = BlockSums(d3, nb);
        sbyte* y0 = (sbyte*)act + 2, y1 = (sbyte*)a1 + 2, y2 = (sbyte*)a2 + 2, y3 = (sbyte*)a3 + 2;
        // per token: even blocks of a group of 8 into e, odd ones into o, d_w·(d_y·Σq) into f (Dot256's acc0, acc1, accOffset)
        Vector256<float> e0 = default, e1 = default, e2 = default, e3 = default;
        Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default;
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        float* s = stackalloc float[32];
        Vector256<int> lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        for (; b + 8 <= nb; b += 8)
        {
            Vector256<float> dw = HalfConvert.F16ToF32(Avx2.GatherVector256((int*)w, lane * bb, 1));
            (dw * Vector256.Load(d0 + b)).Store(s);
            (dw * Vector256.Load(d1 + b)).Store(s + 8);
            (dw * Vector256.Load(d2 + b)).Store(s + 16);
            (dw * Vector256.Load(d3 + b)).Store(s + 24);
            f0 = Vector256.FusedMultiplyAdd(dw, Vector256.Load(s0 + b), f0);
            f1 = Vector256.FusedMultiplyAdd(dw, Vector256.Load(s1 + b), f1);
            f2 = Vector256.FusedMultiplyAdd(dw, Vector256.Load(s2 + b), f2);
            f3 = Vector256.FusedMultiplyAdd(dw, Vector256.Load(s3 + b), f3);
            for (int i = 0; i < 8; i += 2)
            {
                long ya = (long)i * ActBlockBytes, yb = ya + ActBlockBytes;
                Vector256<byte> qa = T.Values(w + i * bb), qb = T.Values(w + (i + 1) * bb);
                e0 = Vector256.FusedMultiplyAdd(Vector256.Create(s[i]), UnsignedDot(qa, y0 + ya), e0);
                e1 = Vector256.FusedMultiplyAdd(Vector256.Create(s[8 + i]), UnsignedDot(qa, y1 + ya), e1);
                e2 = Vector256.FusedMultiplyAdd(Vector256.Create(s[16 + i]), UnsignedDot(qa, y2 + ya), e2);
                e3 = Vector256.FusedMultiplyAdd(Vector256.Create(s[24 + i]), UnsignedDot(qa, y3 + ya), e3);
                o0 = Vector256.FusedMultiplyAdd(Vector256.Create(s[i + 1]), UnsignedDot(qb, y0 + yb), o0);
                o1 = Vector256.FusedMultiplyAdd(Vector256.Create(s[9 + i]), UnsignedDot(qb, y1 + yb), o1);
                o2 = Vector256.FusedMultiplyAdd(Vector256.Create(s[17 + i]), UnsignedDot(qb, y2 + yb), o2);
                o3 = Vector256.FusedMultiplyAdd(Vector256.Create(s[25 + i]), UnsignedDot(qb, y3 + yb), o3);
            }
            w += 8 * bb;
            y0 += 8 * ActBlockBytes;
            y1 += 8 * ActBlockBytes;
            y2 += 8 * ActBlockBytes;
            y3 += 8 * ActBlockBytes;
        }
        float g0 = 0, g1 = 0, g2 = 0, g3 = 0;
        for (; b < nb; b++, w += bb, y0 += ActBlockBytes, y1 += ActBlockBytes, y2 += ActBlockBytes, y3 += ActBlockBytes)
        {
            float dwb = HalfConvert.F16ToF32(*(ushort*)w);
            Vector256<byte> q = T.Values(w);
            e0 = Vector256.FusedMultiplyAdd(Vector256.Create(dwb * d0[b]), UnsignedDot(q, y0), e0);
            e1 = Vector256.FusedMultiplyAdd(Vector256.Create(dwb * d1[b]), UnsignedDot(q, y1), e1);
            e2 = Vector256.FusedMultiplyAdd(Vector256.Create(dwb * d2[b]), UnsignedDot(q, y2), e2);
            e3 = Vector256.FusedMultiplyAdd(Vector256.Create(dwb * d3[b]), UnsignedDot(q, y3), e3);
            g0 += dwb * s0[b];
            g1 += dwb * s1[b];
            g2 += dwb * s2[b];
            g3 += dwb * s3[b];
        }
        y[0] = Vector256.Sum(e0 + o0) - T.Offset * (Vector256.Sum(f0) + g0);
        y[yStride] = Vector256.Sum(e1 + o1) - T.Offset * (Vector256.Sum(f1) + g1);
        y[2 * yStride] = Vector256.Sum(e2 + o2) - T.Offset * (Vector256.Sum(f2) + g2);
        y[3 * yStride] = Vector256.Sum(e3 + o3) - T.Offset * (Vector256.Sum(f3) + g3);
    }

    /// <summary>One weight row against 4 activation rows; each block is unpacked once for the 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : ILegacyBlock
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        for (int b = 0; b < n / 32; b++, w += T.BlockBytes)
        {
            long o = (long)b * ActBlockBytes;
            Vector256<byte> q = T.Values(w);
            float dw = HalfConvert.F16ToF32(*(ushort*)w);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a0 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a0 + o) + 2)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a1 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a1 + o) + 2)), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a2 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a2 + o) + 2)), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a3 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a3 + o) + 2)), acc3);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
        y[2 * yStride] = Vector256.Sum(acc2);
        y[3 * yStride] = Vector256.Sum(acc3);
    }
}
