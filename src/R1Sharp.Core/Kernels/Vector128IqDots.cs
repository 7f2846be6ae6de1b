// The 128-bit int8 dots (SimdLevel.V128, V128Dot) of the 256-value IQ and ternary types with block_q8_K activations
// (the scalar level's ggml layout: d at 0, qs at 4). Each group of 32 values unpacks (IGroup128.Group) into its signed
// values as two int8 vectors (grid magnitudes from IqTables times their ±1 signs, IQ1's 8·grid ± 1 with the 1/8 in the
// block scale, IQ4_XS through its codebook with a table shuffle, the ternary levels less one) and the integer scale
// of each 16; each 16-lane multiply (sdot with Dp, smull/sadalp without, portable widening off ARM) lies inside one
// scale group, so the block's integer sum is exact and only the float order differs from ggml's.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// <summary>A 256-value block type read as 8 groups of 32 signed int8 values.</summary>
internal unsafe interface IGroup128
{
    static abstract int BlockBytes { get; }

    /// <summary>The block's weight scale before the group scales (as IGroupBlock.Scale).</summary>
    static abstract float Scale(byte* w);

    /// <summary>Group g (values 32g … 32g + 31): values 0..15 and 16..31 as int8, and the integer scale of each 16.</summary>
    static abstract void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1);
}

internal static unsafe class GroupValues128
{
    /// <summary>Two grid points of 8 magnitudes times two sign entries of 8 ±1 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> Signed(ulong m0, ulong m1, ulong s0, ulong s1) =>
        Vector128.Create(m0, m1).AsSByte() * Vector128.Create(s0, s1).AsSByte();

    /// <summary>Magnitudes m negated where bit i of the 16-bit word negates byte i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> SignBits(Vector128<sbyte> m, uint bits16)
    {
        Vector128<byte> spread = Vector128.Shuffle(Vector128.CreateScalar(bits16).AsByte(),
            Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        var bit = Vector128.Create(0x8040201008040201UL).AsByte();
        Vector128<sbyte> negative = Vector128.Equals(spread & bit, bit).AsSByte();
        return (m ^ negative) - negative;
    }

    /// <summary>Trits (0, 1, 2) of the bytes src selected by the powers of 3 in pow, less one: ((q·3^k mod 256)·3) ≫ 8 − 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> Trits(Vector128<byte> src, Vector128<byte> pow)
    {
        var (lo, hi) = Vector128.Widen(src * pow);
        Vector128<byte> t = Vector128.Narrow(Vector128.ShiftRightLogical(lo * (ushort)3, 8), Vector128.ShiftRightLogical(hi * (ushort)3, 8));
        return t.AsSByte() - Vector128<sbyte>.One;
    }
}

internal unsafe partial struct Iq2XxsGroups : IGroup128
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        uint a = *(uint*)(w + 2 + 8 * g), b = *(uint*)(w + 6 + 8 * g);
        ulong* grid = IqTables.Iq2Xxs, signs = IqTables.EvenSigns;
        v0 = GroupValues128.Signed(grid[a & 0xFF], grid[(a >> 8) & 0xFF], signs[b & 127], signs[(b >> 7) & 127]);
        v1 = GroupValues128.Signed(grid[(a >> 16) & 0xFF], grid[a >> 24], signs[(b >> 14) & 127], signs[(b >> 21) & 127]);
        s0 = s1 = (int)(2 * (b >> 28) + 1);
    }
}

internal unsafe partial struct Iq2XsGroups : IGroup128
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        ulong q = *(ulong*)(w + 2 + 8 * g);
        uint q0 = (uint)q & 0xFFFF, q1 = (uint)(q >> 16) & 0xFFFF, q2 = (uint)(q >> 32) & 0xFFFF, q3 = (uint)(q >> 48);
        ulong* grid = IqTables.Iq2Xs, signs = IqTables.EvenSigns;
        v0 = GroupValues128.Signed(grid[q0 & 511], grid[q1 & 511], signs[q0 >> 9], signs[q1 >> 9]);
        v1 = GroupValues128.Signed(grid[q2 & 511], grid[q3 & 511], signs[q2 >> 9], signs[q3 >> 9]);
        int sc = w[66 + g];
        s0 = 2 * (sc & 0xF) + 1;
        s1 = 2 * (sc >> 4) + 1;
    }
}

internal unsafe partial struct Iq2SGroups : IGroup128
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        // four 10-bit grid indices: a byte of qs and 2 bits of qh each
        uint qs = *(uint*)(w + 2 + 4 * g), qh = w[66 + g], s = *(uint*)(w + 34 + 4 * g);
        ulong* grid = IqTables.Iq2S;
        Vector128<sbyte> m0 = Vector128.Create(grid[(qs & 0xFF) | (qh & 3) << 8], grid[((qs >> 8) & 0xFF) | (qh & 0xC) << 6]).AsSByte();
        Vector128<sbyte> m1 = Vector128.Create(grid[((qs >> 16) & 0xFF) | (qh & 0x30) << 4], grid[(qs >> 24) | (qh & 0xC0) << 2]).AsSByte();
        v0 = GroupValues128.SignBits(m0, s & 0xFFFF);
        v1 = GroupValues128.SignBits(m1, s >> 16);
        int sc = w[74 + g];
        s0 = 2 * (sc & 0xF) + 1;
        s1 = 2 * (sc >> 4) + 1;
    }
}

internal unsafe partial struct Iq3XxsGroups : IGroup128
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        byte* q = w + 2 + 8 * g;
        uint aux = *(uint*)(w + 66 + 4 * g);
        uint* grid = IqTables.Iq3Xxs;
        ulong* signs = IqTables.EvenSigns;
        v0 = Vector128.Create(grid[q[0]], grid[q[1]], grid[q[2]], grid[q[3]]).AsSByte()
            * Vector128.Create(signs[aux & 127], signs[(aux >> 7) & 127]).AsSByte();
        v1 = Vector128.Create(grid[q[4]], grid[q[5]], grid[q[6]], grid[q[7]]).AsSByte()
            * Vector128.Create(signs[(aux >> 14) & 127], signs[(aux >> 21) & 127]).AsSByte();
        s0 = s1 = (int)(2 * (aux >> 28) + 1);
    }
}

internal unsafe partial struct Iq3SGroups : IGroup128
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        // eight 9-bit grid indices: a byte of qs, and bit k of qh the 9th bit of point k
        byte* q = w + 2 + 8 * g;
        uint qh = w[66 + g], s = *(uint*)(w + 74 + 4 * g);
        uint* grid = IqTables.Iq3S;
        Vector128<sbyte> m0 = Vector128.Create(grid[q[0] | (qh & 1) << 8], grid[q[1] | (qh & 2) << 7], grid[q[2] | (qh & 4) << 6], grid[q[3] | (qh & 8) << 5]).AsSByte();
        Vector128<sbyte> m1 = Vector128.Create(grid[q[4] | (qh & 16) << 4], grid[q[5] | (qh & 32) << 3], grid[q[6] | (qh & 64) << 2], grid[q[7] | (qh & 128) << 1]).AsSByte();
        v0 = GroupValues128.SignBits(m0, s & 0xFFFF);
        v1 = GroupValues128.SignBits(m1, s >> 16);
        s0 = s1 = (int)(2 * ((*(uint*)(w + 106) >> (4 * g)) & 0xF) + 1);
    }
}

internal unsafe partial struct Iq1SGroups : IGroup128
{
    /// <summary>8·grid + shift, the shift ±1 per group (−1 where bit 15 of its qh word is set), from the 8·grid + 9 table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        uint qs = *(uint*)(w + 2 + 4 * g), qh = *(ushort*)(w + 34 + 2 * g);
        ulong* grid = IqTables.Iq1SNine;
        var off = Vector128.Create((sbyte)((qh & 0x8000) != 0 ? 10 : 8));
        v0 = Vector128.Create(grid[(qs & 0xFF) | (qh & 7) << 8], grid[((qs >> 8) & 0xFF) | (qh & 0x38) << 5]).AsSByte() - off;
        v1 = Vector128.Create(grid[((qs >> 16) & 0xFF) | (qh & 0x1C0) << 2], grid[(qs >> 24) | (qh & 0xE00) >> 1]).AsSByte() - off;
        s0 = s1 = (int)(2 * ((qh >> 12) & 7) + 1);
    }
}

internal unsafe partial struct Iq1MGroups : IGroup128
{
    /// <summary>8·grid + shift, a shift of ±1 per 8 values (−1 where the top bit of its qh nibble is set).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        uint qs = *(uint*)(w + 4 * g), qh = *(ushort*)(w + 32 + 2 * g);
        ulong* grid = IqTables.Iq1SNine;
        uint signs = ((qh >> 3) & 1) | ((qh >> 6) & 2) | ((qh >> 9) & 4) | ((qh >> 12) & 8);
        sbyte* delta = IqTables.Iq1MDeltas + 32 * signs;
        var nine = Vector128.Create((sbyte)9);
        v0 = Vector128.Create(grid[(qs & 0xFF) | (qh & 7) << 8], grid[((qs >> 8) & 0xFF) | (qh & 0x70) << 4]).AsSByte() - nine + Vector128.Load(delta);
        v1 = Vector128.Create(grid[((qs >> 16) & 0xFF) | (qh & 0x700)], grid[(qs >> 24) | (qh & 0x7000) >> 4]).AsSByte() - nine + Vector128.Load(delta + 16);
        // two 3-bit scales per group: bits 6(g % 2) .. of the scale word g / 2
        uint sc = (uint)(*(ushort*)(w + 48 + 2 * (g / 2)) >> (6 * (g % 2)));
        s0 = (int)(2 * (sc & 7) + 1);
        s1 = (int)(2 * ((sc >> 3) & 7) + 1);
    }
}

internal unsafe partial struct Iq4XsGroups : IGroup128
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        Block32Values.Lookup(w + 8 + 16 * g, Block32Values.Iq4Values(), out v0, out v1);
        // 6-bit scale: a low nibble of scales_l, 2 high bits of scales_h, less 32
        s0 = s1 = (int)(((*(uint*)(w + 4) >> (4 * g)) & 0xF) | ((uint)(*(ushort*)(w + 2) >> (2 * g)) & 3) << 4) - 32;
    }
}

internal unsafe partial struct Tq2Groups : IGroup128
{
    /// <summary>Values 128h + 32l + m: bits 2l of byte 32h + m, the level less 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        byte* q = w + 32 * (g / 4);
        var m3 = Vector128.Create((byte)3);
        v0 = (Vector128.ShiftRightLogical(Vector128.Load(q), 2 * (g % 4)) & m3).AsSByte() - Vector128<sbyte>.One;
        v1 = (Vector128.ShiftRightLogical(Vector128.Load(q + 16), 2 * (g % 4)) & m3).AsSByte() - Vector128<sbyte>.One;
        s0 = s1 = 1;
    }
}

internal unsafe partial struct Tq1Groups : IGroup128
{
    /// <summary>
    /// Value 32g + m is trit g of byte m for groups 0..4; values 160 + 16n + m trit n of byte 32 + m (groups 5, 6 and the
    /// first half of 7); values 240 + 4n + j trit n of byte 48 + j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group128(byte* w, int g, out Vector128<sbyte> v0, out Vector128<sbyte> v1, out int s0, out int s1)
    {
        s0 = s1 = 1;
        if (g < 5)
        {
            var pow = Vector128.Create((byte)Pow3(g));
            v0 = GroupValues128.Trits(Vector128.Load(w), pow);
            v1 = GroupValues128.Trits(Vector128.Load(w + 16), pow);
            return;
        }
        Vector128<byte> mid = Vector128.Load(w + 32);
        if (g < 7)
        {
            v0 = GroupValues128.Trits(mid, Vector128.Create((byte)Pow3(2 * g - 10)));
            v1 = GroupValues128.Trits(mid, Vector128.Create((byte)Pow3(2 * g - 9)));
            return;
        }
        v0 = GroupValues128.Trits(mid, Vector128.Create((byte)81));
        v1 = GroupValues128.Trits(Vector128.Create(*(uint*)(w + 48)).AsByte(), Vector128.Create((byte)1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Pow3(int k) => k switch { 0 => 1, 1 => 3, 2 => 9, 3 => 27, _ => 81 };
}

internal static unsafe class Vector128IqDots
{
    private const int QK_K = 256, Q8_KBytes = 292, Q8_KQs = 4;

    /// <summary>Group g against the 32 activations at y (block start): scale · Σ v·y in 4 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> GroupDot<TD>(Vector128<sbyte> v0, Vector128<sbyte> v1, int s0, int s1, sbyte* y) where TD : struct, IInt8Dot =>
        TD.Dot(default, v0, Vector128.Load(y)) * Vector128.Create(s0) + TD.Dot(default, v1, Vector128.Load(y + 16)) * Vector128.Create(s1);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<T, TD>(byte* w, byte* act, int n) where T : struct, IGroup128 where TD : struct, IInt8Dot
    {
        Vector128<float> acc = default;
        for (int i = 0; i < n / QK_K; i++, w += T.BlockBytes, act += Q8_KBytes)
        {
            sbyte* y = (sbyte*)act + Q8_KQs;
            Vector128<int> sumi = default;
            for (int g = 0; g < 8; g++)
            {
                T.Group128(w, g, out var v0, out var v1, out int s0, out int s1);
                sumi += GroupDot<TD>(v0, v1, s0, s1, y + 32 * g);
            }
            acc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(sumi), Vector128.Create(T.Scale(w) * *(float*)act), acc);
        }
        return Vector128.Sum(acc);
    }

    /// <summary>One row against 4 tokens actStride bytes apart: each group unpacked once for the 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4<T, TD>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, IGroup128 where TD : struct, IInt8Dot
    {
        Vector128<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int i = 0; i < n / QK_K; i++, w += T.BlockBytes)
        {
            byte* a0 = act + (long)i * Q8_KBytes, a1 = a0 + actStride, a2 = a1 + actStride, a3 = a2 + actStride;
            Vector128<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int g = 0; g < 8; g++)
            {
                T.Group128(w, g, out var v0, out var v1, out int c0, out int c1);
                int o = Q8_KQs + 32 * g;
                s0 += GroupDot<TD>(v0, v1, c0, c1, (sbyte*)a0 + o);
                s1 += GroupDot<TD>(v0, v1, c0, c1, (sbyte*)a1 + o);
                s2 += GroupDot<TD>(v0, v1, c0, c1, (sbyte*)a2 + o);
                s3 += GroupDot<TD>(v0, v1, c0, c1, (sbyte*)a3 + o);
            }
            float d = T.Scale(w);
            f0 = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s0), Vector128.Create(d * *(float*)a0), f0);
            f1 = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s1), Vector128.Create(d * *(float*)a1), f1);
            f2 = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s2), Vector128.Create(d * *(float*)a2), f2);
            f3 = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s3), Vector128.Create(d * *(float*)a3), f3);
        }
        y[0] = Vector128.Sum(f0);
        y[yStride] = Vector128.Sum(f1);
        y[2 * yStride] = Vector128.Sum(f2);
        y[3 * yStride] = Vector128.Sum(f3);
    }

    /// <summary>
    /// k (the scalar table's entry: ggml-layout activations) with T's 128-bit dots at a 128-bit level; k elsewhere. No
    /// two-row dot: decode pairs rows only where a type has one.
    /// </summary>
    public static TypeKernels Groups<T>(in TypeKernels k, SimdLevel level) where T : struct, IGroup128 => level switch
    {
        SimdLevel.V128Dot => k with { Dot = &Dot<T, SignedDot>, DotTile = &Dot4<T, SignedDot>, TileTokens = 4 },
        SimdLevel.V128 => k with { Dot = &Dot<T, WideningDot>, DotTile = &Dot4<T, WideningDot>, TileTokens = 4 },
        _ => k,
    };
}
