// Tensor element types as numbered in ggml, and the block geometry of each:
// a row of a quantized tensor is a whole number of blocks of BlockSize values stored in BlockBytes bytes.
namespace R1Sharp.Tensors;

public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
}

public static class GgmlTypeInfo
{
    /// <summary>Number of values in one block (1 for plain float types).</summary>
    public static int BlockSize(GgmlType t) => t switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => 1,
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 or GgmlType.Q8_1
            or GgmlType.IQ4_NL or GgmlType.MXFP4 => 32,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K
            or GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ3_XXS or GgmlType.IQ3_S
            or GgmlType.IQ1_S or GgmlType.IQ1_M or GgmlType.IQ4_XS or GgmlType.TQ1_0 or GgmlType.TQ2_0 => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown tensor type"),
    };

    /// <summary>Bytes taken by one block.</summary>
    public static int BlockBytes(GgmlType t) => t switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.Q4_0 => 2 + 16,
        GgmlType.Q4_1 => 2 + 2 + 16,
        GgmlType.Q5_0 => 2 + 4 + 16,
        GgmlType.Q5_1 => 2 + 2 + 4 + 16,
        GgmlType.Q8_0 => 2 + 32,
        GgmlType.Q8_1 => 2 + 2 + 32,
        GgmlType.Q2_K => 16 + 64 + 2 + 2,
        GgmlType.Q3_K => 32 + 64 + 12 + 2,
        GgmlType.Q4_K => 2 + 2 + 12 + 128,
        GgmlType.Q5_K => 2 + 2 + 12 + 32 + 128,
        GgmlType.Q6_K => 128 + 64 + 16 + 2,
        GgmlType.Q8_K => 4 + 256 + 32,
        GgmlType.IQ2_XXS => 2 + 64,
        GgmlType.IQ2_XS => 2 + 64 + 8,
        GgmlType.IQ2_S => 2 + 64 + 8 + 8,
        GgmlType.IQ3_XXS => 2 + 96,
        GgmlType.IQ3_S => 2 + 64 + 8 + 32 + 4,
        GgmlType.IQ1_S => 2 + 32 + 16,
        GgmlType.IQ1_M => 32 + 16 + 8,
        GgmlType.IQ4_NL => 2 + 16,
        GgmlType.IQ4_XS => 2 + 2 + 4 + 128,
        GgmlType.TQ1_0 => 48 + 4 + 2,
        GgmlType.TQ2_0 => 64 + 2,
        GgmlType.MXFP4 => 1 + 16,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown tensor type"),
    };

    public static bool IsKnown(GgmlType t) => Enum.IsDefined(t);

    /// <summary>Bytes of a row of <paramref name="n"/> values; n must be a multiple of the block size.</summary>
    public static long RowBytes(GgmlType t, long n) => n / BlockSize(t) * BlockBytes(t);

    /// <summary>Lower-case name as used on the command line (q8_0, f16, ...).</summary>
    public static string Name(GgmlType t) => t.ToString().ToLowerInvariant();

    public static bool TryParse(string name, out GgmlType type)
    {
        foreach (var t in Enum.GetValues<GgmlType>())
        {
            if (string.Equals(Name(t), name, StringComparison.OrdinalIgnoreCase)) { type = t; return true; }
        }
        type = default;
        return false;
    }
}
