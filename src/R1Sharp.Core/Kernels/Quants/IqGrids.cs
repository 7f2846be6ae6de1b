// The lookup tables of ggml's IQ formats (ggml-common.h), built from their definitions: the dequantization grids
// (iq2xxs_grid, iq2xs_grid, iq2s_grid, iq1s_grid: 8 bytes per point; iq3xxs_grid, iq3s_grid: 4 bytes) from the
// compact point lists in IqGrids.Points.cs and each format's level values, ksigns_iq2xs (7 sign bits plus an
// eighth that makes the count of minus signs even), kmask_iq2xs, and the two non-linear 4-bit codebooks.
// The quantizers' own grid form (coordinates 2l + 1) and their neighbour lists are in IqGridSearch.
namespace R1Sharp.Kernels.Quants;

internal static partial class IqGrids
{
    /// <summary>iq2xxs_grid: 8 magnitudes per point, levels 0, 1, 2 → 8, 25, 43.</summary>
    public static readonly ulong[] Iq2Xxs = Grid8(Iq2XxsPoints, Iq2Levels);

    /// <summary>iq2xs_grid, levels as <see cref="Iq2Xxs"/>.</summary>
    public static readonly ulong[] Iq2Xs = Grid8(Iq2XsPoints, Iq2Levels);

    /// <summary>iq2s_grid, levels as <see cref="Iq2Xxs"/>.</summary>
    public static readonly ulong[] Iq2S = Grid8(Iq2SPoints, Iq2Levels);

    /// <summary>iq1s_grid: 8 signed bytes per point, levels 0, 1, 2 → −1, 0, 1.</summary>
    public static readonly ulong[] Iq1S = Grid8(Iq1SPoints, [0xFF, 0x00, 0x01]);

    /// <summary>iq3xxs_grid: 4 magnitudes per point, levels 0..7 → 4, 12, 20, 28, 36, 44, 52, 62.</summary>
    public static readonly uint[] Iq3Xxs = Grid4(Iq3XxsPoints, [4, 12, 20, 28, 36, 44, 52, 62]);

    /// <summary>iq3s_grid: 4 magnitudes per point, levels 0..7 → 2l + 1.</summary>
    public static readonly uint[] Iq3S = Grid4(Iq3SPoints, [1, 3, 5, 7, 9, 11, 13, 15]);

    private static ReadOnlySpan<byte> Iq2Levels => [8, 25, 43];

    /// <summary>ksigns_iq2xs: 7 stored sign bits i, and bit 7 set when i has an odd number of them.</summary>
    public static readonly byte[] KSigns = Enumerable.Range(0, 128)
        .Select(i => (byte)(i | (System.Numerics.BitOperations.PopCount((uint)i) % 2 == 1 ? 0x80 : 0))).ToArray();

    /// <summary>kvalues_iq4nl: the 16 values of IQ4_NL and IQ4_XS.</summary>
    public static ReadOnlySpan<sbyte> KValuesIq4Nl => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    /// <summary>kvalues_mxfp4: the 16 E2M1 values doubled (sign bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6 times 2).</summary>
    public static ReadOnlySpan<sbyte> KValuesMxfp4 => [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

    /// <summary>The compact point lists, for the quantizers' grid maps.</summary>
    public static ReadOnlySpan<ushort> Points(GridKind kind) => kind switch
    {
        GridKind.Iq2Xxs => Iq2XxsPoints,
        GridKind.Iq2Xs => Iq2XsPoints,
        GridKind.Iq2S => Iq2SPoints,
        GridKind.Iq1S => Iq1SPoints,
        GridKind.Iq3Xxs => Iq3XxsPoints,
        GridKind.Iq3S => Iq3SPoints,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static ulong[] Grid8(ReadOnlySpan<ushort> points, ReadOnlySpan<byte> levels)
    {
        var grid = new ulong[points.Length];
        for (int k = 0; k < points.Length; k++)
            for (int i = 0; i < 8; i++) grid[k] |= (ulong)levels[(points[k] >> (2 * i)) & 3] << (8 * i);
        return grid;
    }

    private static uint[] Grid4(ReadOnlySpan<ushort> points, ReadOnlySpan<byte> levels)
    {
        var grid = new uint[points.Length];
        for (int k = 0; k < points.Length; k++)
            for (int i = 0; i < 4; i++) grid[k] |= (uint)levels[(points[k] >> (3 * i)) & 7] << (8 * i);
        return grid;
    }
}

/// <summary>The IQ grids (IQ1_S and IQ1_M share one).</summary>
internal enum GridKind { Iq2Xxs, Iq2Xs, Iq2S, Iq1S, Iq3Xxs, Iq3S }
