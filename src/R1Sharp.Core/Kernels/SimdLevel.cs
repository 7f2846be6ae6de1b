// Which vector width a kernel table is built for. Production code uses Simd.Best; tests build a table per level
// so that every path is held to the scalar reference on one machine.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal enum SimdLevel
{
    Scalar = 0,
    /// <summary>AVX2 + FMA (256-bit).</summary>
    V256 = 1,
    /// <summary>AVX-512 F/BW (512-bit).</summary>
    V512 = 2,
}

internal static class Simd
{
    public static bool IsSupported(SimdLevel level) => level switch
    {
        SimdLevel.Scalar => true,
        SimdLevel.V256 => Avx2.IsSupported && Fma.IsSupported && Vector256.IsHardwareAccelerated,
        SimdLevel.V512 => Avx512F.IsSupported && Avx512BW.IsSupported && Avx2.IsSupported && Fma.IsSupported
            && Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>The widest level this machine runs.</summary>
    public static SimdLevel Best { get; } =
        IsSupported(SimdLevel.V512) ? SimdLevel.V512 : IsSupported(SimdLevel.V256) ? SimdLevel.V256 : SimdLevel.Scalar;

    /// <summary>Every level this machine runs, scalar first.</summary>
    public static IReadOnlyList<SimdLevel> Supported { get; } =
        Enum.GetValues<SimdLevel>().Where(IsSupported).ToArray();
}
