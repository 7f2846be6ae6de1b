// A 2-D weight in ggml layout, read in place from a memory-mapped file or native memory (nothing is copied), or
// rewritten once in place into its type's interleaved decode layout (rows in groups, see TypeKernels.Interleave), or
// left in place and read by the products with the interleaved layout's arithmetic (the same results as the rewritten one).
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

/// <summary>
/// <see cref="Rows"/> rows (output features, ggml ne[1]) of <see cref="Cols"/> values (input features, ne[0], contiguous),
/// each row <see cref="RowBytes"/> bytes of <see cref="Type"/> blocks; where <see cref="Interleaved"/>, each group of
/// <see cref="GroupRows"/> rows holds the same bytes in the type's interleaved layout.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public WeightMatrix(GgmlType type, byte* data, int rows, int cols) : this(type, data, rows, cols, false, false) { }

    private WeightMatrix(GgmlType type, byte* data, int rows, int cols, bool interleaved, bool interleavesOnRead)
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
        Interleaved = interleaved;
        InterleavesOnRead = interleavesOnRead;
    }

    public GgmlType Type { get; }
    public byte* Data { get; }
    public int Rows { get; }
    public int Cols { get; }
    public long RowBytes { get; }

    /// <summary>The rows are in groups of <see cref="GroupRows"/> in the type's interleaved layout.</summary>
    public bool Interleaved { get; }

    /// <summary>
    /// The rows are in the native layout, and the products read them with the interleaved layout's arithmetic (decode
    /// scales each row's block sums as the interleaved kernel does; batches interleave each group as they read it):
    /// their results are those of the <see cref="Interleave"/>d matrix bit for bit, so a model can move from one to the
    /// other between passes (from a mapped file to its in-memory copy) without changing what it computes.
    /// </summary>
    public bool InterleavesOnRead { get; }

    /// <summary>The products compute with the interleaved layout's kernels (<see cref="Interleaved"/> or <see cref="InterleavesOnRead"/>).</summary>
    public bool ReadsInterleaved => Interleaved || InterleavesOnRead;

    /// <summary>Rows per group of the type's interleaved layout at this machine's SIMD level (0: the type has none).</summary>
    public int GroupRows => KernelTable.Default.Supports(Type) && KernelTable.Default[Type].Interleave != null ? KernelTable.Default[Type].InterleaveRows : 0;

    /// <summary>Total bytes of the matrix.</summary>
    public long Bytes => RowBytes * Rows;

    /// <summary>Row r's bytes (native layout only: an interleaved row is spread over its group).</summary>
    public byte* Row(int r)
    {
        if (Interleaved) throw new InvalidOperationException("an interleaved matrix has no contiguous rows");
        return Data + r * RowBytes;
    }

    /// <summary>Rows [first, first + count) as a matrix of their own (whole groups where interleaved).</summary>
    public WeightMatrix Slice(int first, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(first + count, Rows);
        if (ReadsInterleaved && (first % GroupRows != 0 || count % GroupRows != 0))
            throw new ArgumentException($"rows [{first}, {first + count}) cut a group of {GroupRows} interleaved rows");
        return new WeightMatrix(Type, Data + first * RowBytes, count, Cols, Interleaved, InterleavesOnRead);
    }

    /// <summary>Whether <see cref="Interleave"/> applies: a type with an interleaved layout at this machine's SIMD level, whole groups.</summary>
    public bool CanInterleave => !ReadsInterleaved && Cols > 0 && GroupRows > 0 && Rows % GroupRows == 0;

    /// <summary>
    /// This matrix read as <see cref="Interleave"/> would leave it, without writing it (a mapped file): see
    /// <see cref="InterleavesOnRead"/>. A matrix that cannot be interleaved is returned as it is.
    /// </summary>
    public WeightMatrix InterleaveOnRead() => CanInterleave ? new WeightMatrix(Type, Data, Rows, Cols, false, true) : this;

    /// <summary>
    /// Rewrites the rows in place into the interleaved layout (the memory must be writable and this matrix's alone)
    /// and returns the interleaved matrix; a matrix that cannot be interleaved is returned as it is. The groups are
    /// split over <paramref name="pool"/>'s threads where one is given.
    /// </summary>
    public WeightMatrix Interleave(ComputePool? pool = null)
    {
        if (!CanInterleave) return this;
        var job = new InterleaveJob { Data = Data, GroupBytes = GroupRows * RowBytes, RowBytes = RowBytes, Cols = Cols, Interleave = KernelTable.Default[Type].Interleave };
        int groups = Rows / GroupRows;
        if (pool is null || pool.Threads == 1 || groups < 2) InterleaveGroups(0, groups, &job);
        else pool.Run(groups, &InterleaveGroups, &job);
        return new WeightMatrix(Type, Data, Rows, Cols, true, false);
    }

    private struct InterleaveJob
    {
        public byte* Data;
        public long GroupBytes;
        public long RowBytes;
        public int Cols;
        public delegate*<byte*, long, int, byte*, void> Interleave;
    }

    /// <summary>Groups [start, end): each copied aside, then written back interleaved.</summary>
    private static void InterleaveGroups(int start, int end, void* ctx)
    {
        var j = (InterleaveJob*)ctx;
        byte* tmp = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)j->GroupBytes);
        try
        {
            for (long g = start; g < end; g++)
            {
                byte* p = j->Data + g * j->GroupBytes;
                Buffer.MemoryCopy(p, tmp, j->GroupBytes, j->GroupBytes);
                j->Interleave(tmp, j->RowBytes, j->Cols, p);
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.Free(tmp);
        }
    }

    /// <summary>Row r as floats (either layout).</summary>
    public void DequantizeRow(int r, Span<float> dst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (!Interleaved)
        {
            Quantization.DequantizeRow(Type, new ReadOnlySpan<byte>(Row(r), checked((int)RowBytes)), dst);
            return;
        }
        int G = GroupRows;
        var group = new byte[G * RowBytes];
        fixed (byte* pg = group) KernelTable.Default[Type].Deinterleave(Data + r / G * G * RowBytes, Cols, pg, RowBytes);
        Quantization.DequantizeRow(Type, group.AsSpan((int)(r % G * RowBytes), (int)RowBytes), dst);
    }
}
