// The IQ lookup tables in native memory for the SIMD kernels (a pointer load in the hot loop instead of an array's
// bounds check): the grids of IqGrids, a sign table that gives 7 stored sign bits with their parity bit
// (ksigns_iq2xs) as 8 bytes of ±1 for vpsignb, and IQ1_M's shift signs of a group as one vector.
using R1Sharp.Kernels.Quants;

namespace R1Sharp.Kernels;

internal static unsafe class IqTables
{
    public static readonly ulong* Iq2Xxs = Pin(IqGrids.Iq2Xxs);
    public static readonly ulong* Iq2Xs = Pin(IqGrids.Iq2Xs);
    public static readonly ulong* Iq2S = Pin(IqGrids.Iq2S);
    /// <summary>IQ1's grid (values −1, 0, 1) as bytes 8·v + 9 (1, 9, 17): with a shift of ±1 the Offset mode's values.</summary>
    public static readonly ulong* Iq1SNine = Pin(IqGrids.Iq1S.Select(EightVPlusNine).ToArray());
    public static readonly uint* Iq3Xxs = Pin(IqGrids.Iq3Xxs);
    public static readonly uint* Iq3S = Pin(IqGrids.Iq3S);

    /// <summary>7 stored sign bits i with their parity bit (ksigns_iq2xs) as 8 bytes of +1 or −1.</summary>
    public static readonly ulong* EvenSigns = Pin(Enumerable.Range(0, 128).Select(i => SignBytes(IqGrids.KSigns[i])).ToArray());

    /// <summary>
    /// IQ1_M's shift signs: entry i (bit k of i for the k-th group of 8) as 32 bytes of ±1, one vector per entry.
    /// </summary>
    public static readonly sbyte* Iq1MDeltas = Pin(Enumerable.Range(0, 16)
        .SelectMany(i => Enumerable.Range(0, 32).Select(j => (sbyte)((i >> (j / 8) & 1) != 0 ? -1 : 1))).ToArray());

    private static ulong EightVPlusNine(ulong point)
    {
        ulong r = 0;
        for (int j = 0; j < 8; j++) r |= (ulong)(byte)(8 * (sbyte)(point >> (8 * j)) + 9) << (8 * j);
        return r;
    }

    private static ulong SignBytes(byte b)
    {
        ulong r = 0;
        for (int j = 0; j < 8; j++) r |= (ulong)((b >> j & 1) != 0 ? 0xFF : 0x01) << (8 * j);
        return r;
    }

    private static T* Pin<T>(T[] values) where T : unmanaged
    {
        var p = (T*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(values.Length * sizeof(T)), 64);
        values.CopyTo(new Span<T>(p, values.Length));
        return p;
    }
}
