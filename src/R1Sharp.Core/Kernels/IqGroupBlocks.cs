// How each 256-value IQ and ternary block unpacks into IqKernels' groups of 32 (layouts in Kernels/Quants/QuantReference.*):
// grid formats look their points up in IqTables (8 magnitudes per IQ2/IQ1 point, 4 per IQ3 point) and their signs in
// the ±1 sign tables (IQ1 as 8·grid + 9, see Iq1SGroups); IQ4_XS maps nibbles through its codebook with vpshufb; the ternary formats take their levels
// apart with shifts (TQ2_0) or base-3 digit arithmetic (TQ1_0).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal static class GroupScales
{
    /// <summary>One integer scale for all 32 values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> One(int s) => Vector256.Create((short)s);

    /// <summary>
    /// 32 sign bits (bit j of byte k negates value 8k + j) as ±1 bytes: each byte spread over 8 lanes (vpshufb of the
    /// broadcast word), its own bit tested in each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<sbyte> SignBits(uint s)
    {
        Vector256<byte> spread = Avx2.Shuffle(Vector256.Create(s).AsByte(),
            Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        Vector256<byte> bit = Vector256.Create(0x8040201008040201UL).AsByte();
        return (Vector256.Equals(spread & bit, bit) | Vector256<byte>.One).AsSByte();
    }

    /// <summary>Int16 lane g of each 128-bit lane of a block's scales, over its whole 128-bit lane (one vpshufb).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Lane(Vector256<short> scales, int g) =>
        Avx2.Shuffle(scales.AsByte(), Vector256.Create((ushort)(2 * g | (2 * g + 1) << 8)).AsByte()).AsInt16();

    /// <summary>8 bytes as 8 int16 scales 2·b + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<short> Odd(ulong bytes) =>
        Sse41.ConvertToVector128Int16(Vector128.CreateScalar(bytes).AsByte()) * Vector128.Create((short)2) + Vector128.Create((short)1);

    /// <summary>pdep: the low bits of x deposited at the set bits of mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Deposit(ulong x, ulong mask)
    {
        if (Bmi2.X64.IsSupported) return Bmi2.X64.ParallelBitDeposit(x, mask);
        ulong r = 0;
        for (ulong bit = 1; mask != 0; bit <<= 1, mask &= mask - 1)
            if ((x & bit) != 0) r |= mask & (0 - mask);
        return r;
    }

    /// <summary>pext: the bits of x at the set bits of mask, packed low.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Extract(ulong x, ulong mask)
    {
        if (Bmi2.X64.IsSupported) return Bmi2.X64.ParallelBitExtract(x, mask);
        ulong r = 0;
        for (ulong bit = 1; mask != 0; bit <<= 1, mask &= mask - 1)
            if ((x & mask & (0 - mask)) != 0) r |= bit;
        return r;
    }

    /// <summary>Signed values: their magnitudes, and the values themselves as the sign source.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Magnitudes(Vector256<sbyte> v) => Avx2.Abs(v);
}

internal unsafe partial struct Iq2XxsGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Signed;
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => default;
    public static Vector256<short> Scales(byte* w) => default;
    public static int BlockBytes => 66;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w) * 0.125f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        uint a = *(uint*)(w + 2 + 8 * g), b = *(uint*)(w + 6 + 8 * g);
        ulong* grid = IqTables.Iq2Xxs, signs = IqTables.EvenSigns;
        magnitude = Vector256.Create(grid[a & 0xFF], grid[(a >> 8) & 0xFF], grid[(a >> 16) & 0xFF], grid[a >> 24]).AsByte();
        sign = Vector256.Create(signs[b & 127], signs[(b >> 7) & 127], signs[(b >> 14) & 127], signs[(b >> 21) & 127]).AsSByte();
        scale = GroupScales.One((int)(2 * (b >> 28) + 1));
    }
}

internal unsafe partial struct Iq2XsGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Signed;
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => default;
    /// <summary>The 8 scale bytes' low nibbles (first 16 values of each group) in the low lane, high nibbles in the high lane, as 2s + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Scales(byte* w)
    {
        ulong b = *(ulong*)(w + 66);
        return Vector256.Create(GroupScales.Odd(b & 0x0F0F0F0F0F0F0F0FUL), GroupScales.Odd((b >> 4) & 0x0F0F0F0F0F0F0F0FUL));
    }
    public static int BlockBytes => 74;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w) * 0.125f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        ulong q = *(ulong*)(w + 2 + 8 * g);
        uint q0 = (uint)q & 0xFFFF, q1 = (uint)(q >> 16) & 0xFFFF, q2 = (uint)(q >> 32) & 0xFFFF, q3 = (uint)(q >> 48);
        ulong* grid = IqTables.Iq2Xs, signs = IqTables.EvenSigns;
        magnitude = Vector256.Create(grid[q0 & 511], grid[q1 & 511], grid[q2 & 511], grid[q3 & 511]).AsByte();
        sign = Vector256.Create(signs[q0 >> 9], signs[q1 >> 9], signs[q2 >> 9], signs[q3 >> 9]).AsSByte();
        scale = GroupScales.Lane(scales, g);
    }
}

internal unsafe partial struct Iq2SGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Signed;
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => default;
    /// <summary>The 8 scale bytes' low nibbles (first 16 values of each group) in the low lane, high nibbles in the high lane, as 2s + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Scales(byte* w)
    {
        ulong b = *(ulong*)(w + 74);
        return Vector256.Create(GroupScales.Odd(b & 0x0F0F0F0F0F0F0F0FUL), GroupScales.Odd((b >> 4) & 0x0F0F0F0F0F0F0F0FUL));
    }
    public static int BlockBytes => 82;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w) * 0.125f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        uint s = *(uint*)(w + 34 + 4 * g);
        // the four 10-bit grid indices as 16-bit fields: a byte of qs and 2 bits of qh each
        ulong idx = GroupScales.Deposit(*(uint*)(w + 2 + 4 * g), 0x00FF00FF00FF00FFUL) | GroupScales.Deposit(w[66 + g], 0x0300030003000300UL);
        ulong* grid = IqTables.Iq2S;
        magnitude = Vector256.Create(grid[(ushort)idx], grid[(ushort)(idx >> 16)], grid[(ushort)(idx >> 32)], grid[idx >> 48]).AsByte();
        sign = GroupScales.SignBits(s);
        scale = GroupScales.Lane(scales, g);
    }
}

internal unsafe partial struct Iq3XxsGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Signed;
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => default;
    public static Vector256<short> Scales(byte* w) => default;
    public static int BlockBytes => 98;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w) * 0.25f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        byte* q = w + 2 + 8 * g;
        uint aux = *(uint*)(w + 66 + 4 * g);
        uint* grid = IqTables.Iq3Xxs;
        ulong* signs = IqTables.EvenSigns;
        magnitude = Vector256.Create(grid[q[0]], grid[q[1]], grid[q[2]], grid[q[3]], grid[q[4]], grid[q[5]], grid[q[6]], grid[q[7]]).AsByte();
        sign = Vector256.Create(signs[aux & 127], signs[(aux >> 7) & 127], signs[(aux >> 14) & 127], signs[(aux >> 21) & 127]).AsSByte();
        scale = GroupScales.One((int)(2 * (aux >> 28) + 1));
    }
}

internal unsafe partial struct Iq3SGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Signed;
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => default;
    /// <summary>The 8 groups' 4-bit scales (a nibble each of bytes 106..109) as 2s + 1, in both lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Scales(byte* w)
    {
        Vector128<short> s = GroupScales.Odd(GroupScales.Deposit(*(uint*)(w + 106), 0x0F0F0F0F0F0F0F0FUL));
        return Vector256.Create(s, s);
    }
    public static int BlockBytes => 110;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        uint qh = w[66 + g], s = *(uint*)(w + 74 + 4 * g);
        uint* grid = IqTables.Iq3S;
        // the eight 9-bit grid indices as 16-bit fields: a byte of qs, and bit k of qh the 9th bit of point k
        ulong lo = GroupScales.Deposit(*(uint*)(w + 2 + 8 * g), 0x00FF00FF00FF00FFUL) | GroupScales.Deposit(qh, 0x0100010001000100UL);
        ulong hi = GroupScales.Deposit(*(uint*)(w + 6 + 8 * g), 0x00FF00FF00FF00FFUL) | GroupScales.Deposit(qh >> 4, 0x0100010001000100UL);
        magnitude = Vector256.Create(grid[(ushort)lo], grid[(ushort)(lo >> 16)], grid[(ushort)(lo >> 32)], grid[lo >> 48],
            grid[(ushort)hi], grid[(ushort)(hi >> 16)], grid[(ushort)(hi >> 32)], grid[hi >> 48]).AsByte();
        sign = GroupScales.SignBits(s);
        scale = GroupScales.Lane(scales, g);
    }
}

/// <summary>
/// IQ1 values as the Offset mode reads them, the ±1/8 shift scaled by 8 (the kernels' d carries the 1/8) and 9 added:
/// IQ1_S 8·grid + 9 (its group's shift in its offsets), IQ1_M 8·grid + 9 ± 1 (a shift per 8 values).
/// </summary>
internal static unsafe class Iq1Values
{
    /// <summary>The 4 points of a group from their indices in the 16-bit fields of idx.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Points(ulong idx)
    {
        ulong* grid = IqTables.Iq1SNine;
        return Vector256.Create(grid[(ushort)idx], grid[(ushort)(idx >> 16)], grid[(ushort)(idx >> 32)], grid[idx >> 48]).AsByte();
    }
}

internal unsafe partial struct Iq1SGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Offset;

    /// <summary>The 8 groups' scales 2·((qh ≫ 12) &amp; 7) + 1, in both lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Scales(byte* w)
    {
        Vector128<short> s = ((Vector128.ShiftRightLogical(Vector128.Load((ushort*)(w + 34)), 11) & Vector128.Create((ushort)14)) | Vector128<ushort>.One).AsInt16();
        return Vector256.Create(s, s);
    }

    /// <summary>Per 16 values, scale · (shift − 9): a group's shift is −1 where bit 15 of its qh word is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales)
    {
        Vector128<short> s = scales.GetLower(), negative = Vector128.ShiftRightArithmetic(Vector128.Load((short*)(w + 34)), 15);
        Vector128<short> o = ((Vector128.ShiftLeft(s, 1) & negative) + Vector128.ShiftLeft(s, 3)) * Vector128.Create((short)-1);
        return Vector256.Create(Sse2.UnpackLow(o, o), Sse2.UnpackHigh(o, o));
    }

    public static int BlockBytes => 50;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w) * 0.125f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        uint qh = *(ushort*)(w + 34 + 2 * g);
        // the four 11-bit grid indices as 16-bit fields: a byte of qs and 3 bits of qh each
        ulong idx = GroupScales.Deposit(*(uint*)(w + 2 + 4 * g), 0x00FF00FF00FF00FFUL) | GroupScales.Deposit(qh, 0x0700070007000700UL);
        magnitude = Iq1Values.Points(idx);
        sign = default;
        scale = GroupScales.Lane(scales, g);
    }
}

internal unsafe partial struct Iq1MGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Offset;
    /// <summary>
    /// The 16 three-bit scales (bits 0..11 of the four scale words: per group of 32 one for each 16 values) as 2s + 1,
    /// the first 16 values' of each group in the low lane, the second 16 values' in the high lane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Scales(byte* w)
    {
        ulong fields = GroupScales.Extract(*(ulong*)(w + 48), 0x0FFF0FFF0FFF0FFFUL);
        // bytes in order: group 0 first half, group 0 second half, group 1 first half, ...
        Vector128<byte> b = Vector128.Create(GroupScales.Deposit(fields, 0x0707070707070707UL), GroupScales.Deposit(fields >> 24, 0x0707070707070707UL)).AsByte();
        Vector128<byte> split = Ssse3.Shuffle(b, Vector128.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        return Vector256.Create(GroupScales.Odd(split.AsUInt64().ToScalar()), GroupScales.Odd(split.AsUInt64().GetElement(1)));
    }

    /// <summary>Per 16 values −9 · its scale (the shifts, one per 8 values, are in Group's values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales)
    {
        Vector128<short> lo = scales.GetLower(), hi = scales.GetUpper();
        return Vector256.Create(Sse2.UnpackLow(lo, hi), Sse2.UnpackHigh(lo, hi)) * Vector256.Create((short)-9);
    }

    public static int BlockBytes => 56;

    /// <summary>The F16 scale gathered from the top nibbles of the four scale words, times 1/8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w)
    {
        ulong sc = *(ulong*)(w + 48);
        ushort bits = (ushort)(((sc >> 12) & 0x000F) | ((sc >> 24) & 0x00F0) | ((sc >> 36) & 0x0F00) | ((sc >> 48) & 0xF000));
        return BlockScale.F16ToF32(bits) * 0.125f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        uint qh = *(ushort*)(w + 32 + 2 * g);
        // the four grid indices as 16-bit fields: a byte of qs and 3 bits of each qh nibble; each group of 8 has its own
        // shift sign, the nibble's top bit: the four make an index into a table of shift vectors (a branch per sign
        // would mispredict on the data, and building the vector from scalars took the method past the JIT's inlining budget)
        ulong idx = GroupScales.Deposit(*(uint*)(w + 4 * g), 0x00FF00FF00FF00FFUL) | GroupScales.Deposit(qh & 0x7777, 0x0F000F000F000F00UL);
        uint signs = (uint)GroupScales.Extract(qh, 0x8888);
        magnitude = Iq1Values.Points(idx) + Vector256.Load((byte*)IqTables.Iq1MDeltas + 32 * signs);
        sign = default;
        scale = GroupScales.Lane(scales, g);
    }
}

internal unsafe partial struct Iq4XsGroups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Signed;
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => default;
    /// <summary>The 8 groups' 6-bit scales minus 32 in both lanes: a low nibble each from scales_l, 2 high bits from scales_h.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Scales(byte* w)
    {
        ulong ls = GroupScales.Deposit(*(uint*)(w + 4), 0x0F0F0F0F0F0F0F0FUL) | GroupScales.Deposit(*(ushort*)(w + 2), 0x3030303030303030UL);
        Vector128<short> s = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(ls).AsByte()) - Vector128.Create((short)32);
        return Vector256.Create(s, s);
    }
    public static int BlockBytes => 136;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w);

    private static readonly Vector256<sbyte> s_values = Vector256.Create(Vector128.Create((sbyte)-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    private static readonly Vector256<byte> s_magnitudes = Avx2.IsSupported ? Avx2.Abs(s_values) : default;

    /// <summary>The 32 nibbles of 16 bytes in value order: low nibbles (values 0..15), then high nibbles (16..31).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Nibbles(byte* q)
    {
        Vector128<byte> v = Vector128.Load(q);
        return Vector256.Create(v, Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        Vector256<byte> nib = Nibbles(w + 8 + 16 * g);
        sign = Avx2.Shuffle(s_values, nib.AsSByte());
        magnitude = Avx2.Shuffle(s_magnitudes, nib);
        scale = GroupScales.Lane(scales, g);
    }
}

internal unsafe partial struct Tq2Groups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Ternary;
    /// <summary>Levels stored + 1: Σ y once off.</summary>
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => Vector256.Create((short)-1);
    public static Vector256<short> Scales(byte* w) => default;
    public static int BlockBytes => 66;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)(w + 64));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        // values 128h + 32l + m: bits 2l of byte 32h + m, the level minus 1
        magnitude = Vector256.ShiftRightLogical(Vector256.Load(w + 32 * (g / 4)).AsUInt16(), 2 * (g % 4)).AsByte() & Vector256.Create((byte)3);
        sign = default;
        scale = GroupScales.One(1);
    }
}

internal unsafe partial struct Tq1Groups : IGroupBlock
{
    public static GroupMode Mode => GroupMode.Ternary;
    /// <summary>Levels stored + 1: Σ y once off.</summary>
    public static Vector256<short> Offsets(byte* w, Vector256<short> scales) => Vector256.Create((short)-1);
    public static Vector256<short> Scales(byte* w) => default;
    public static int BlockBytes => 54;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)(w + 52));

    /// <summary>
    /// Per group, the power of 3 that selects each byte's trit, for the even and the odd bytes (as 16-bit lanes):
    /// vector 2g the even bytes', 2g + 1 the odd bytes'.
    /// </summary>
    private static readonly ushort* s_pow = BuildPowers();

    private static ushort* BuildPowers()
    {
        var p = (ushort*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(16 * 16 * sizeof(ushort), 64);
        ReadOnlySpan<byte> pow3 = [1, 3, 9, 27, 81];
        for (int g = 0; g < 8; g++)
        {
            for (int b = 0; b < 32; b++)
            {
                // the trit that value 32g + b reads (see Source)
                int trit = g < 5 ? g : g == 5 ? b / 16 : g == 6 ? 2 + b / 16 : b < 16 ? 4 : (b - 16) / 4;
                p[16 * (2 * g + b % 2) + b / 2] = pow3[trit];
            }
        }
        return p;
    }

    /// <summary>
    /// The 32 packed bytes whose trits are group g's values, in value order: bytes 0..31 for groups 0..4 (value 32g + m
    /// is trit g of byte m); bytes 32..47 twice for groups 5 and 6 (value 160 + 16n + m is trit n of byte 32 + m); for
    /// group 7 bytes 32..47 (trit 4), then bytes 48..51 four times (value 240 + 4n + j is trit n of byte 48 + j).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Source(byte* w, int g)
    {
        if (g < 5) return Vector256.Load(w);
        Vector128<byte> mid = Vector128.Load(w + 32);
        return g < 7 ? Vector256.Create(mid, mid) : Vector256.Create(mid, Vector128.Create(*(uint*)(w + 48)).AsByte());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale)
    {
        // trit k of byte q: ((q·3^k mod 256)·3) >> 8. The products mod 256 in 16-bit lanes (the even bytes' in the low
        // byte of src·3^k, the odd bytes' in the high byte of (src with its low byte cleared)·3^k), then ·3 >> 8 as
        // avg(x, avg(x, 0)) >> 6 on x = p − 1 (saturating), exact for every byte
        Vector256<ushort> src = Source(w, g).AsUInt16();
        Vector256<byte> p = ((src * Vector256.Load(s_pow + 32 * g) & Vector256.Create((ushort)0x00FF))
            | ((src & Vector256.Create((ushort)0xFF00)) * Vector256.Load(s_pow + 32 * g + 16))).AsByte();
        Vector256<byte> x = Avx2.SubtractSaturate(p, Vector256<byte>.One);
        x = Avx2.Average(x, Avx2.Average(x, Vector256<byte>.Zero));
        magnitude = Vector256.ShiftRightLogical(x.AsUInt16(), 6).AsByte() & Vector256.Create((byte)3);
        sign = default;
        scale = GroupScales.One(1);
    }
}
