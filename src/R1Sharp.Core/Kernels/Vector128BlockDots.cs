// The 128-bit int8 dots (SimdLevel.V128, V128Dot) of the 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4)
// and of Q2_K and Q3_K, on Vector128 with Vector128Dots' int8 multiply (sdot with Dp, smull/sadalp without; portable
// widening off ARM, so x86 test runs hold this level too). Each block unpacks into its values as int8 (the offset of
// Q4_0/Q5_0 and Q3_K's high-bit subtraction applied in the bytes, the codebooks looked up with a table shuffle: tbl on
// ARM), every 16-lane multiply lies inside one scale group, so the integer sums are exact and only the float order
// differs from ggml's. Activations keep the scalar level's ggml layouts: block_q8_0 (d at 0, qs at 2), block_q8_1
// (d, s = d·Σq at 2, qs at 4) for the types with a min, block_q8_K (d at 0, qs at 4, bsums at 260).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

/// <summary>A 32-value block read as 32 int8 values, a scale and (Q4_1, Q5_1: Q8_1 activations) a min.</summary>
internal unsafe interface IBlock32
{
    static abstract int BlockBytes { get; }

    /// <summary>w = Scale·value (+ Min for the types with one).</summary>
    static abstract float Scale(byte* w);

    /// <summary>Whether the block has a min (its activations are then block_q8_1, whose s carries d_y·Σq).</summary>
    static abstract bool HasMin { get; }

    static abstract float Min(byte* w);

    /// <summary>Values 0..15 and 16..31 of the block as int8.</summary>
    static abstract void Unpack(byte* w, out Vector128<sbyte> lo, out Vector128<sbyte> hi);
}

internal static unsafe class Block32Values
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(byte* p) => BlockScale.F16ToF32(*(ushort*)p);

    /// <summary>The 32 nibbles of 16 bytes in value order: the low nibbles (values 0..15), then the high ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Nibbles(byte* qs, out Vector128<byte> lo, out Vector128<byte> hi)
    {
        Vector128<byte> v = Vector128.Load(qs);
        lo = v & Vector128.Create((byte)0x0F);
        hi = Vector128.ShiftRightLogical(v, 4);
    }

    /// <summary>0x10 in byte i where bit i of the 16-bit word is set (the fifth bit of Q5_0/Q5_1 values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> FifthBits(uint bits16)
    {
        Vector128<byte> spread = Vector128.Shuffle(Vector128.CreateScalar(bits16).AsByte(),
            Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        var bit = Vector128.Create(0x8040201008040201UL).AsByte();
        return Vector128.Equals(spread & bit, bit) & Vector128.Create((byte)0x10);
    }

    /// <summary>kvalues_iq4nl.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> Iq4Values() => Vector128.Create((sbyte)-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);

    /// <summary>A block's 16 nibble bytes through a 16-entry codebook, in value order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Lookup(byte* qs, Vector128<sbyte> codebook, out Vector128<sbyte> lo, out Vector128<sbyte> hi)
    {
        Nibbles(qs, out var l, out var h);
        lo = Vector128.Shuffle(codebook, l.AsSByte());
        hi = Vector128.Shuffle(codebook, h.AsSByte());
    }
}

/// <summary>Q4_0: f16 d, 16 bytes of nibbles; w = d·(q − 8).</summary>
internal unsafe struct Q4_0Values : IBlock32
{
    public static int BlockBytes => 18;
    public static bool HasMin => false;
    public static float Min(byte* w) => 0;
    public static float Scale(byte* w) => Block32Values.Half(w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* w, out Vector128<sbyte> lo, out Vector128<sbyte> hi)
    {
        Block32Values.Nibbles(w + 2, out var l, out var h);
        lo = l.AsSByte() - Vector128.Create((sbyte)8);
        hi = h.AsSByte() - Vector128.Create((sbyte)8);
    }
}

/// <summary>Q4_1: f16 d and m, 16 bytes of nibbles; w = d·q + m.</summary>
internal unsafe struct Q4_1Values : IBlock32
{
    public static int BlockBytes => 20;
    public static bool HasMin => true;
    public static float Min(byte* w) => Block32Values.Half(w + 2);
    public static float Scale(byte* w) => Block32Values.Half(w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* w, out Vector128<sbyte> lo, out Vector128<sbyte> hi)
    {
        Block32Values.Nibbles(w + 4, out var l, out var h);
        lo = l.AsSByte();
        hi = h.AsSByte();
    }
}

/// <summary>Q5_0: f16 d, 4 bytes of fifth bits, 16 bytes of nibbles; w = d·(q − 16).</summary>
internal unsafe struct Q5_0Values : IBlock32
{
    public static int BlockBytes => 22;
    public static bool HasMin => false;
    public static float Min(byte* w) => 0;
    public static float Scale(byte* w) => Block32Values.Half(w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* w, out Vector128<sbyte> lo, out Vector128<sbyte> hi)
    {
        uint qh = *(uint*)(w + 2);
        Block32Values.Nibbles(w + 6, out var l, out var h);
        lo = (l | Block32Values.FifthBits(qh & 0xFFFF)).AsSByte() - Vector128.Create((sbyte)16);
        hi = (h | Block32Values.FifthBits(qh >> 16)).AsSByte() - Vector128.Create((sbyte)16);
    }
}

/// <summary>Q5_1: f16 d and m, 4 bytes of fifth bits, 16 bytes of nibbles; w = d·q + m.</summary>
internal unsafe struct Q5_1Values : IBlock32
{
    public static int BlockBytes => 24;
    public static bool HasMin => true;
    public static float Min(byte* w) => Block32Values.Half(w + 2);
    public static float Scale(byte* w) => Block32Values.Half(w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* w, out Vector128<sbyte> lo, out Vector128<sbyte> hi)
    {
        uint qh = *(uint*)(w + 4);
        Block32Values.Nibbles(w + 8, out var l, out var h);
        lo = (l | Block32Values.FifthBits(qh & 0xFFFF)).AsSByte();
        hi = (h | Block32Values.FifthBits(qh >> 16)).AsSByte();
    }
}

/// <summary>IQ4_NL: f16 d, 16 bytes of nibbles into kvalues_iq4nl.</summary>
internal unsafe partial struct Iq4NlBlock32 : IBlock32
{
    public static bool HasMin => false;
    public static float Min(byte* w) => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* w, out Vector128<sbyte> lo, out Vector128<sbyte> hi) =>
        Block32Values.Lookup(w + 2, Block32Values.Iq4Values(), out lo, out hi);
}

/// <summary>MXFP4: an E8M0 exponent, 16 bytes of nibbles into the doubled E2M1 values (the scale carries the half).</summary>
internal unsafe partial struct Mxfp4Block32 : IBlock32
{
    public static bool HasMin => false;
    public static float Min(byte* w) => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* w, out Vector128<sbyte> lo, out Vector128<sbyte> hi) =>
        Block32Values.Lookup(w + 1, Vector128.Create((sbyte)0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12), out lo, out hi);
}

internal static unsafe class Vector128BlockDots
{
    private const int QK_K = 256, Q8_KBytes = 292, Q8_KQs = 4, Q8_KBSums = 260;
    private const int Q2_KBytes = 84, Q3_KBytes = 110;

    // ---- 32-value blocks ----

    /// <summary>Bytes of one activation block: block_q8_1 for the types with a min, block_q8_0 otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ActBytes<T>() where T : IBlock32 => T.HasMin ? 36 : 34;

    /// <summary>Σ v·y of one block against the activation block a, as 4 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> BlockDot<T, TD>(Vector128<sbyte> lo, Vector128<sbyte> hi, byte* a) where T : IBlock32 where TD : struct, IInt8Dot
    {
        var y = (sbyte*)a + (T.HasMin ? 4 : 2);
        return Vector128.ConvertToSingle(TD.Dot(TD.Dot(default, lo, Vector128.Load(y)), hi, Vector128.Load(y + 16)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<T, TD>(byte* w, byte* act, int n) where T : struct, IBlock32 where TD : struct, IInt8Dot
    {
        Vector128<float> acc0 = default, acc1 = default;
        float mins = 0;
        int nb = n / 32, b = 0, ab = ActBytes<T>();
        for (; b + 2 <= nb; b += 2, w += 2 * T.BlockBytes, act += 2 * ab)
        {
            T.Unpack(w, out var lo0, out var hi0);
            T.Unpack(w + T.BlockBytes, out var lo1, out var hi1);
            acc0 = Vector128.FusedMultiplyAdd(BlockDot<T, TD>(lo0, hi0, act), Vector128.Create(T.Scale(w) * Block32Values.Half(act)), acc0);
            acc1 = Vector128.FusedMultiplyAdd(BlockDot<T, TD>(lo1, hi1, act + ab), Vector128.Create(T.Scale(w + T.BlockBytes) * Block32Values.Half(act + ab)), acc1);
            if (T.HasMin) mins += T.Min(w) * Block32Values.Half(act + 2) + T.Min(w + T.BlockBytes) * Block32Values.Half(act + ab + 2);
        }
        if (b < nb)
        {
            T.Unpack(w, out var lo, out var hi);
            acc0 = Vector128.FusedMultiplyAdd(BlockDot<T, TD>(lo, hi, act), Vector128.Create(T.Scale(w) * Block32Values.Half(act)), acc0);
            if (T.HasMin) mins += T.Min(w) * Block32Values.Half(act + 2);
        }
        return Vector128.Sum(acc0 + acc1) + mins;
    }

    /// <summary>One row against 4 tokens actStride bytes apart: each block unpacked once for the 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4<T, TD>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, IBlock32 where TD : struct, IInt8Dot
    {
        Vector128<float> c0 = default, c1 = default, c2 = default, c3 = default;
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
        int ab = ActBytes<T>();
        for (int b = 0; b < n / 32; b++, w += T.BlockBytes)
        {
            byte* a0 = act + (long)b * ab, a1 = a0 + actStride, a2 = a1 + actStride, a3 = a2 + actStride;
            T.Unpack(w, out var lo, out var hi);
            float d = T.Scale(w);
            c0 = Vector128.FusedMultiplyAdd(BlockDot<T, TD>(lo, hi, a0), Vector128.Create(d * Block32Values.Half(a0)), c0);
            c1 = Vector128.FusedMultiplyAdd(BlockDot<T, TD>(lo, hi, a1), Vector128.Create(d * Block32Values.Half(a1)), c1);
            c2 = Vector128.FusedMultiplyAdd(BlockDot<T, TD>(lo, hi, a2), Vector128.Create(d * Block32Values.Half(a2)), c2);
            c3 = Vector128.FusedMultiplyAdd(BlockDot<T, TD>(lo, hi, a3), Vector128.Create(d * Block32Values.Half(a3)), c3);
            if (T.HasMin)
            {
                float m = T.Min(w);
                m0 += m * Block32Values.Half(a0 + 2);
                m1 += m * Block32Values.Half(a1 + 2);
                m2 += m * Block32Values.Half(a2 + 2);
                m3 += m * Block32Values.Half(a3 + 2);
            }
        }
        y[0] = Vector128.Sum(c0) + m0;
        y[yStride] = Vector128.Sum(c1) + m1;
        y[2 * yStride] = Vector128.Sum(c2) + m2;
        y[3 * yStride] = Vector128.Sum(c3) + m3;
    }

    /// <summary>k with the 128-bit dots of T at a 128-bit level (ggml-layout activations as the scalar level's); k elsewhere.</summary>
    public static TypeKernels Legacy<T>(in TypeKernels k, SimdLevel level) where T : struct, IBlock32 => level switch
    {
        SimdLevel.V128Dot => k with { Dot = &Dot<T, SignedDot>, DotTile = &Dot4<T, SignedDot>, TileTokens = 4 },
        SimdLevel.V128 => k with { Dot = &Dot<T, WideningDot>, DotTile = &Dot4<T, WideningDot>, TileTokens = 4 },
        _ => k,
    };

    // ---- Q2_K, Q3_K (block_q8_K activations) ----

    /// <summary>Σ_s min_s · bsums_s over the 16 sub-blocks of 16 (Q2_K's mins: the high nibbles of its scale bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Q2Mins(byte* scales, short* bsums)
    {
        int sum = 0;
        for (int s = 0; s < 16; s++) sum += (scales[s] >> 4) * bsums[s];
        return sum;
    }

    /// <summary>
    /// Q2_K: 16 bytes of 4-bit scale (low) and min (high) per 16 values, 64 bytes of 2-bit quants, f16 d and dmin;
    /// value 128h + 32j + l is bits 2j..2j+1 of qs[32h + l], scale 8h + 2j + (l ≥ 16).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotQ2_K<TD>(byte* w, byte* act, int n) where TD : struct, IInt8Dot
    {
        var m3 = Vector128.Create((byte)3);
        Vector128<float> acc = default;
        float mins = 0;
        for (int i = 0; i < n / QK_K; i++, w += Q2_KBytes, act += Q8_KBytes)
        {
            float dy = *(float*)act;
            mins += dy * Block32Values.Half(w + 82) * Q2Mins(w, (short*)(act + Q8_KBSums));
            sbyte* y = (sbyte*)act + Q8_KQs;
            Vector128<int> sumi = default;
            for (int h = 0; h < 2; h++, y += 128)
            {
                Vector128<byte> q0 = Vector128.Load(w + 16 + 32 * h), q1 = Vector128.Load(w + 32 + 32 * h);
                byte* sc = w + 8 * h;
                for (int j = 0; j < 4; j++)
                {
                    sumi += TD.Dot(default, (Vector128.ShiftRightLogical(q0, 2 * j) & m3).AsSByte(), Vector128.Load(y + 32 * j)) * Vector128.Create(sc[2 * j] & 0xF);
                    sumi += TD.Dot(default, (Vector128.ShiftRightLogical(q1, 2 * j) & m3).AsSByte(), Vector128.Load(y + 32 * j + 16)) * Vector128.Create(sc[2 * j + 1] & 0xF);
                }
            }
            acc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(sumi), Vector128.Create(dy * Block32Values.Half(w + 80)), acc);
        }
        return Vector128.Sum(acc) - mins;
    }

    /// <summary>Q3_K's 16 six-bit scales minus 32 (ggml's unpacking of its 12 scale bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q3Scales(byte* s, int* scales)
    {
        for (int j = 0; j < 16; j++)
            scales[j] = ((j < 8 ? s[j] & 0xF : s[j - 8] >> 4) | ((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
    }

    /// <summary>
    /// Q3_K: hmask[32], qs[64], 12 scale bytes, f16 d; value 128h + 32j + l is bits 2j..2j+1 of qs[32h + l], less 4
    /// where bit 4h + j of hmask[l] is clear; scale 8h + 2j + (l ≥ 16).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    public static float DotQ3_K<TD>(byte* w, byte* act, int n) where TD : struct, IInt8Dot
    {
        var m3 = Vector128.Create((byte)3);
        var four = Vector128.Create((byte)4);
        int* sc = stackalloc int[16];
        Vector128<float> acc = default;
        for (int i = 0; i < n / QK_K; i++, w += Q3_KBytes, act += Q8_KBytes)
        {
            Q3Scales(w + 96, sc);
            Vector128<byte> hm0 = Vector128.Load(w), hm1 = Vector128.Load(w + 16);
            sbyte* y = (sbyte*)act + Q8_KQs;
            Vector128<int> sumi = default;
            for (int h = 0; h < 2; h++, y += 128)
            {
                Vector128<byte> q0 = Vector128.Load(w + 32 + 32 * h), q1 = Vector128.Load(w + 48 + 32 * h);
                for (int j = 0; j < 4; j++)
                {
                    var bit = Vector128.Create((byte)(1 << (4 * h + j)));
                    Vector128<sbyte> v0 = (Vector128.ShiftRightLogical(q0, 2 * j) & m3).AsSByte() - (Vector128.Equals(hm0 & bit, Vector128<byte>.Zero) & four).AsSByte();
                    Vector128<sbyte> v1 = (Vector128.ShiftRightLogical(q1, 2 * j) & m3).AsSByte() - (Vector128.Equals(hm1 & bit, Vector128<byte>.Zero) & four).AsSByte();
                    sumi += TD.Dot(default, v0, Vector128.Load(y + 32 * j)) * Vector128.Create(sc[8 * h + 2 * j]);
                    sumi += TD.Dot(default, v1, Vector128.Load(y + 32 * j + 16)) * Vector128.Create(sc[8 * h + 2 * j + 1]);
                }
            }
            acc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(sumi), Vector128.Create(*(float*)act * Block32Values.Half(w + 108)), acc);
        }
        return Vector128.Sum(acc);
    }

    private readonly struct Q2_KRow<TD> : Vector128Dots.IRowDot where TD : struct, IInt8Dot
    {
        public static float Dot(byte* w, byte* act, int n) => DotQ2_K<TD>(w, act, n);
    }

    private readonly struct Q3_KRow<TD> : Vector128Dots.IRowDot where TD : struct, IInt8Dot
    {
        public static float Dot(byte* w, byte* act, int n) => DotQ3_K<TD>(w, act, n);
    }

    /// <summary>Q2_K's or Q3_K's entry k with the 128-bit dots at a 128-bit level; k elsewhere.</summary>
    public static TypeKernels KQuant(in TypeKernels k, SimdLevel level) => (k.Type, level) switch
    {
        (GgmlType.Q2_K, SimdLevel.V128Dot) => k with { Dot = &DotQ2_K<SignedDot>, DotTile = &Vector128Dots.Dot4<Q2_KRow<SignedDot>>, TileTokens = 4 },
        (GgmlType.Q2_K, SimdLevel.V128) => k with { Dot = &DotQ2_K<WideningDot>, DotTile = &Vector128Dots.Dot4<Q2_KRow<WideningDot>>, TileTokens = 4 },
        (GgmlType.Q3_K, SimdLevel.V128Dot) => k with { Dot = &DotQ3_K<SignedDot>, DotTile = &Vector128Dots.Dot4<Q3_KRow<SignedDot>>, TileTokens = 4 },
        (GgmlType.Q3_K, SimdLevel.V128) => k with { Dot = &DotQ3_K<WideningDot>, DotTile = &Vector128Dots.Dot4<Q3_KRow<WideningDot>>, TileTokens = 4 },
        _ => k,
    };
}
