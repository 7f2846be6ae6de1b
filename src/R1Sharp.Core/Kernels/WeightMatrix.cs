// A 2-D weight in ggml layout, read in place from a memory-mapped file or native memory (nothing is copied).
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

/// <summary>
/// <see cref="Rows"/> rows (output features, ggml ne[1]) of <see cref="Cols"/> values (input features, ne[0], contiguous),
/// each row <see cref="RowBytes"/> bytes of <see cref="Type"/> blocks.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public WeightMatrix(GgmlType type, byte* data, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (cols % GgmlTypeInfo.BlockSize(type) != 0)
        {
            throw new ArgumentException($"{cols} columns is not a multiple of the {type} block size {GgmlTypeInfo.BlockSize(type)}", nameof(cols));
        }
        Type = type;
        Data = data;
        Rows = rows;
        Cols = cols;
        RowBytes = GgmlTypeInfo.RowBytes(type, cols);
    }

    public GgmlType Type { get; }
    public byte* Data { get; }
    public int Rows { get; }
    public int Cols { get; }
    public long RowBytes { get; }

    /// <summary>Total bytes of the matrix.</summary>
    public long Bytes => RowBytes * Rows;

    public byte* Row(int r) => Data + r * RowBytes;
}
