// One entry of the GGUF tensor table: name, shape, element type and where its bytes start in the data section.
using R1Sharp.Tensors;

namespace R1Sharp.Formats;

/// <param name="Shape">ne[]: innermost (contiguous) dimension first, so a PyTorch [out, in] weight is {in, out}.</param>
/// <param name="Offset">Byte offset relative to the start of the data section (of its part's file).</param>
public sealed record GgufTensorInfo(string Name, long[] Shape, GgmlType Type, long Offset)
{
    /// <summary>Which file of a split model holds the tensor (0-based, as split.no); 0 in a single file.</summary>
    public int Part { get; init; }

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape) n = checked(n * d);
            return n;
        }
    }

    /// <summary>Bytes the tensor occupies: whole rows of whole blocks.</summary>
    public long ByteSize => checked(GgmlTypeInfo.RowBytes(Type, Shape[0]) * Rows);

    public long Rows => ElementCount / Shape[0];

    /// <summary>The dimensions ggml writes (ggml_n_dims): trailing dimensions of 1 dropped, at least one kept.</summary>
    public static long[] GgmlDims(long[] shape)
    {
        int n = shape.Length;
        while (n > 1 && shape[n - 1] == 1) n--;
        return shape[..n];
    }

    public override string ToString() => $"{Name} {GgmlTypeInfo.Name(Type)} [{string.Join(", ", Shape)}] @{Offset}";
}
