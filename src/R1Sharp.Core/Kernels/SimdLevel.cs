// Which vector width a kernel table is built for. Production code uses Simd.Best; tests build a table per level
// so that every path is held to the scalar reference on one machine.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal enum SimdLevel
{
    Scalar = 0,
    /// <summary>AVX2 + FMA (256-bit).</summary>
    V256 = 1,
    /// <summary>AVX-512 F/BW (512-bit).</summary>
    V512 = 2,
    /// <summary>
    /// 128-bit vectors: AdvSimd (NEON) on ARM64, where int8 dots widen to int16 (smull, sadalp); elsewhere the same
    /// code on portable Vector128 (x86 machines test it, and one without AVX2 runs it).
    /// </summary>
    V128 = 3,
    /// <summary>ARM64 AdvSimd with the dot-product instructions (Dp: sdot, 4 int8 products per int32 lane).</summary>
    V128Dot = 4,
}

internal static class Simd
{
    public static bool IsSupported(SimdLevel level) => level switch
    {
        SimdLevel.Scalar => true,
        SimdLevel.V256 => Avx2.IsSupported && Fma.IsSupported && Vector256.IsHardwareAccelerated,
        SimdLevel.V512 => Avx512F.IsSupported && Avx512BW.IsSupported && Avx2.IsSupported && Fma.IsSupported
            && Vector512.IsHardwareAccelerated,
        SimdLevel.V128 => Vector128.IsHardwareAccelerated,
        SimdLevel.V128Dot => AdvSimd.Arm64.IsSupported && Dp.IsSupported,
        _ => false,
    };

    /// <summary>The widest level this machine runs.</summary>
    public static SimdLevel Best { get; } =
        new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128Dot, SimdLevel.V128 }.FirstOrDefault(IsSupported, SimdLevel.Scalar);

    /// <summary>Every level this machine runs, scalar first.</summary>
    public static IReadOnlyList<SimdLevel> Supported { get; } =
        Enum.GetValues<SimdLevel>().Where(IsSupported).ToArray();
}
