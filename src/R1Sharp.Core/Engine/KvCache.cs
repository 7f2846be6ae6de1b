// Key/value cache: for every layer and slot (sequence), a block of Capacity × KDim values of K and Capacity × VDim of V,
// laid out by the model (the dense models keep each KV head's rows together, deepseek2 one latent row per position).
// Values are stored as F32, or as F16 (llama.cpp's default cache type): half the memory and half the bytes read per
// decoded token, for the cost of widening the rows back to F32 as attention reads them.
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

    public KvCache(int layers, int slots, int capacity, int kDim, int vDim, GgmlType type = GgmlType.F32)
    {
        if (layers <= 0 || slots <= 0 || capacity <= 0 || kDim <= 0 || vDim < 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), "KV cache dimensions must be positive");
        if (type is not (GgmlType.F16 or GgmlType.F32))
            throw new ArgumentException($"a KV cache holds f16 or f32 values, not {GgmlTypeInfo.Name(type)}", nameof(type));
        Layers = layers;
        Slots = slots;
        Capacity = capacity;
        KDim = kDim;
        VDim = vDim;
        Type = type;
        ValueBytes = type == GgmlType.F16 ? sizeof(Half) : sizeof(float);
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
    /// <summary>How values are stored: F16 or F32.</summary>
    public GgmlType Type { get; }
    /// <summary>Bytes per stored value: 2 or 4.</summary>
    public int ValueBytes { get; }
    /// <summary>Positions filled per slot (the next position to write).</summary>
    public int[] Lengths { get; }

    public long TotalBytes => (KBytesPerSlotLayer + VBytesPerSlotLayer) * Layers * Slots;

    private long KBytesPerSlotLayer => (long)Capacity * KDim * ValueBytes;
    private long VBytesPerSlotLayer => (long)Capacity * VDim * ValueBytes;

    /// <summary>The K block of one layer and slot: Capacity × KDim values.</summary>
    public byte* K(int layer, int slot) => _k + ((long)layer * Slots + slot) * KBytesPerSlotLayer;

    /// <summary>The V block of one layer and slot: Capacity × VDim values; null when VDim is 0.</summary>
    public byte* V(int layer, int slot) => _v == null ? null : _v + ((long)layer * Slots + slot) * VBytesPerSlotLayer;

    /// <summary>
    /// Writes <paramref name="values"/> into a block from value <paramref name="index"/> on (F16: rounded to nearest,
    /// ties to even, as ggml).
    /// </summary>
    public void Store(ReadOnlySpan<float> values, byte* block, long index)
    {
        if (Type == GgmlType.F16) TensorPrimitives.ConvertToHalf(values, new Span<Half>((Half*)block + index, values.Length));
        else values.CopyTo(new Span<float>((float*)block + index, values.Length));
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
