// Row conversion between floats and the tensor types, as ggml writes and reads them (weights, embedding lookup).
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

public static unsafe class Quantization
{
    /// <summary>
    /// src.Length values (a multiple of the block size) to GgmlTypeInfo.RowBytes(type, src.Length) bytes, with ggml's
    /// reference quantization (quantize_row_q8_0_ref; BF16 rounds to nearest even and keeps NaN quiet).
    /// </summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst) =>
        QuantizeRow(type, src, dst, KernelTable.Default);

    /// <summary>dst.Length values (a multiple of the block size) from GgmlTypeInfo.RowBytes(type, dst.Length) bytes.</summary>
    public static void DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst) =>
        DequantizeRow(type, src, dst, KernelTable.Default);

    internal static void QuantizeRow(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst, KernelTable table)
    {
        ref readonly TypeKernels k = ref table[type];
        long bytes = CheckedRowBytes(type, src.Length);
        if (dst.Length < bytes) throw new ArgumentException($"dst holds {dst.Length} bytes, need {bytes}", nameof(dst));
        if (src.Length == 0) return;
        fixed (float* s = src)
        fixed (byte* d = dst)
        {
            k.QuantizeRow(s, d, src.Length);
        }
    }

    internal static void DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst, KernelTable table)
    {
        ref readonly TypeKernels k = ref table[type];
        long bytes = CheckedRowBytes(type, dst.Length);
        if (src.Length < bytes) throw new ArgumentException($"src holds {src.Length} bytes, need {bytes}", nameof(src));
        if (dst.Length == 0) return;
        fixed (byte* s = src)
        fixed (float* d = dst)
        {
            k.DequantizeRow(s, d, dst.Length);
        }
    }

    private static long CheckedRowBytes(GgmlType type, int n)
    {
        int bs = GgmlTypeInfo.BlockSize(type);
        if (n % bs != 0) throw new ArgumentException($"{n} values is not a multiple of the {type} block size {bs}");
        return GgmlTypeInfo.RowBytes(type, n);
    }
}
