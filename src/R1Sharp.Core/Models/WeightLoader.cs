// Typed access to a model's tensors in a mapped GGUF file: shape checks with a clear error naming the tensor,
// 2-D weights handed to the kernels in place (interleaved for the products where the file allows), small 1-D tensors
// (norms, biases) as F32.
using System.Runtime.CompilerServices;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

internal sealed unsafe class WeightLoader(GgufFile file, ComputePool pool)
{
    private readonly List<float[]> _owned = new();

    public GgufFile File => file;

    public bool Has(string name) => file.FindTensor(name) is not null;

    /// <summary>
    /// A 2-D weight of <paramref name="rows"/> rows of <paramref name="cols"/> values (GGUF shape [cols, rows]), for
    /// matrix products: interleaved where the file is an in-memory copy that may be repacked and the type has such a
    /// layout. <paramref name="rowAccess"/> keeps the file's layout (a weight whose rows are also read one by one).
    /// </summary>
    public WeightMatrix Matrix(string name, int cols, int rows, bool rowAccess = false)
    {
        var t = Expect(name, cols, rows);
        var m = new WeightMatrix(t.Type, file.TensorPointer(t), rows, cols);
        return rowAccess ? m : ForProducts(m);
    }

    /// <summary>Slice <paramref name="index"/> of a 3-D weight of shape [cols, rows, count] (one expert, one head).</summary>
    public WeightMatrix Slice(string name, int cols, int rows, int count, int index)
    {
        var t = Expect(name, cols, rows, count);
        long bytes = GgmlTypeInfo.RowBytes(t.Type, cols) * rows;
        return ForProducts(new WeightMatrix(t.Type, file.TensorPointer(t) + index * bytes, rows, cols));
    }

    /// <summary>
    /// Each tensor (or slice) is asked for once, so it is interleaved once (on the pool's threads) in an in-memory
    /// copy; a mapped file's matrices interleave as they are read (the same results) unless the file keeps its layout.
    /// </summary>
    private WeightMatrix ForProducts(WeightMatrix m) => !file.RepackWeights ? m : file.InMemory ? m.Interleave(pool) : m.InterleaveOnRead();

    /// <summary>A 1-D tensor as F32: read in place when stored as F32, else dequantized once.</summary>
    public float* Vector(string name, int n)
    {
        var t = file.GetTensor(name);
        if (t.ElementCount != n) throw Bad(t, $"{name} has {t.ElementCount} values, expected {n}");
        if (t.Type == GgmlType.F32) return (float*)file.TensorPointer(t);
        var a = GC.AllocateUninitializedArray<float>(n, pinned: true);
        Quantization.DequantizeRow(t.Type, file.TensorBytes(t), a);
        _owned.Add(a);
        return (float*)Unsafe.AsPointer(ref a[0]);
    }

    /// <summary>The tensor, checked to have <paramref name="shape"/>; trailing dimensions of 1 may be left out (ggml writes
    /// a [n, 1] tensor as [n], as gguf-split does).</summary>
    private GgufTensorInfo Expect(string name, params long[] shape)
    {
        var t = file.GetTensor(name);
        if (!GgufTensorInfo.GgmlDims(t.Shape).AsSpan().SequenceEqual(GgufTensorInfo.GgmlDims(shape)))
            throw Bad(t, $"{name} has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}]");
        return t;
    }

    /// <summary>A problem with tensor <paramref name="t"/>, naming its file where the model has several.</summary>
    private GgufFormatException Bad(GgufTensorInfo t, string message) =>
        new("tensor:" + t.Name, file.FileOffsetOf(t), message, file.Paths.Count > 1 ? file.PathOf(t) : null);
}
