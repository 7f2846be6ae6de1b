// Key/value cache: for every layer and slot (sequence), a block of Capacity × KDim values of K and Capacity × VDim of V,
// laid out by the model (the dense models keep each KV head's rows together, deepseek2 one latent row per position).
// Values are stored as F32, as F16 (llama.cpp's default cache type): half the memory and half the bytes read per
// decoded token, for the cost of widening the rows back to F32 as attention reads them, or as Q8_0 (llama.cpp's
// -ctk q8_0 -ctv q8_0): 34 bytes per 32 values, quantized as ggml-cpu quantizes rows on x86 (round half to even),
// which needs every stored piece (a head's row) to be whole blocks of 32. K and V may differ in type.
// Native memory in huge pages, allocated once and not cleared: a slot's rows past its length are never read, and
// pages are committed as they are first written. A slot is reused by resetting its length. VDim may be 0 when values
// are read from the K rows (MLA caches one latent that serves as both).
using System.Numerics.Tensors;
using R1Sharp.Tensors;

namespace R1Sharp.Engine;

public sealed unsafe class KvCache : IDisposable
{
    private byte* _k;
    private byte* _v;

    public KvCache(int layers, int slots, int capacity, int kDim, int vDim, GgmlType kType = GgmlType.F32, GgmlType? vType = null)
    {
        if (layers <= 0 || slots <= 0 || capacity <= 0 || kDim <= 0 || vDim < 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), "KV cache dimensions must be positive");
        Layers = layers;
        Slots = slots;
        Capacity = capacity;
        KDim = kDim;
        VDim = vDim;
        KType = Check(kType, kDim, "K");
        VType = Check(vType ?? kType, vDim, "V");
        _k = HugePages.Alloc(KBytesPerSlotLayer * layers * slots);
        _v = vDim == 0 ? null : HugePages.Alloc(VBytesPerSlotLayer * layers * slots);
        Lengths = new int[slots];
    }

    public int Layers { get; }
    public int Slots { get; }
    /// <summary>Positions each slot can hold (the context size).</summary>
    public int Capacity { get; }
    /// <summary>Values per K row: kvHeads × headDim.</summary>
    public int KDim { get; }
    /// <summary>Values per V row: kvHeads × valueHeadDim (0: none).</summary>
    public int VDim { get; }
    /// <summary>How K values are stored: F32, F16 or Q8_0.</summary>
    public GgmlType KType { get; }
    /// <summary>How V values are stored: F32, F16 or Q8_0.</summary>
    public GgmlType VType { get; }

    /// <summary>The types a cache can hold.</summary>
    public static readonly IReadOnlyList<GgmlType> Types = [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0];

    /// <summary>Bytes of <paramref name="values"/> values of a cache type (a whole number of blocks for Q8_0).</summary>
    public static long Bytes(GgmlType type, long values) => GgmlTypeInfo.RowBytes(type, values);

    /// <summary>Whether pieces of <paramref name="dim"/> values can be stored in <paramref name="type"/> (Q8_0: whole blocks of 32).</summary>
    public static bool Fits(GgmlType type, int dim) => type != GgmlType.Q8_0 || dim % 32 == 0;

    private static GgmlType Check(GgmlType type, int dim, string what)
    {
        if (!Types.Contains(type))
            throw new ArgumentException($"a KV cache holds f32, f16 or q8_0 values, not {GgmlTypeInfo.Name(type)}");
        if (!Fits(type, dim))
            throw new ArgumentException($"a q8_0 {what} cache needs rows in whole blocks of 32 values; this model's {what} rows have {dim}");
        return type;
    }
    /// <summary>Positions filled per slot (the next position to write).</summary>
    public int[] Lengths { get; }

    public long TotalBytes => (KBytesPerSlotLayer + VBytesPerSlotLayer) * Layers * Slots;

    private long KBytesPerSlotLayer => Bytes(KType, (long)Capacity * KDim);
    private long VBytesPerSlotLayer => Bytes(VType, (long)Capacity * VDim);

    /// <summary>The K block of one layer and slot: Capacity × KDim values.</summary>
    public byte* K(int layer, int slot) => _k + ((long)layer * Slots + slot) * KBytesPerSlotLayer;

    /// <summary>The V block of one layer and slot: Capacity × VDim values; null when VDim is 0.</summary>
    public byte* V(int layer, int slot) => _v == null ? null : _v + ((long)layer * Slots + slot) * VBytesPerSlotLayer;

    /// <summary>Writes K values into a block of <see cref="K"/> from value <paramref name="index"/> on.</summary>
    public void StoreK(ReadOnlySpan<float> values, byte* block, long index) => Store(KType, values, block, index);

    /// <summary>Writes V values into a block of <see cref="V"/> from value <paramref name="index"/> on.</summary>
    public void StoreV(ReadOnlySpan<float> values, byte* block, long index) => Store(VType, values, block, index);

    /// <summary>
    /// F16: rounded to nearest, ties to even, as ggml; Q8_0: ggml-cpu's quantize_row_q8_0 (x86), from a block boundary
    /// over whole blocks.
    /// </summary>
    private static void Store(GgmlType type, ReadOnlySpan<float> values, byte* block, long index)
    {
        switch (type)
        {
            case GgmlType.F16:
                TensorPrimitives.ConvertToHalf(values, new Span<Half>((Half*)block + index, values.Length));
                break;
            case GgmlType.Q8_0:
                if (index % 32 != 0 || values.Length % 32 != 0)
                    throw new InvalidOperationException($"a q8_0 cache stores whole blocks of 32 values (index {index}, {values.Length} values)");
                fixed (float* x = values) Kernels.Q8_0Kernels.QuantizeRowQ8_0(x, block + Bytes(type, index), values.Length);
                break;
            default:
                values.CopyTo(new Span<float>((float*)block + index, values.Length));
                break;
        }
    }

    /// <summary>Forgets everything a slot holds from <paramref name="fromPos"/> on.</summary>
    public void Truncate(int slot, int fromPos = 0) => Lengths[slot] = Math.Min(Lengths[slot], Math.Max(0, fromPos));

    public void Dispose()
    {
        HugePages.Free(_k);
        if (_v != null) HugePages.Free(_v);
        _k = null;
        _v = null;
    }
}
