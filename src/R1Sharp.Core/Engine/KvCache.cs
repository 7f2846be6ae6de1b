// Key/value cache: for every layer and slot (sequence), a block of Capacity × KDim floats of K and Capacity × VDim of V,
// laid out by the model (the dense models keep each KV head's rows together, deepseek2 one latent row per position).
// Native memory, allocated once; a slot is reused by resetting its length. VDim may be 0 when values are read
// from the K rows (MLA caches one latent that serves as both).
using System.Runtime.InteropServices;

namespace R1Sharp.Engine;

public sealed unsafe class KvCache : IDisposable
{
    private float* _k;
    private float* _v;

    public KvCache(int layers, int slots, int capacity, int kDim, int vDim)
    {
        if (layers <= 0 || slots <= 0 || capacity <= 0 || kDim <= 0 || vDim < 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), "KV cache dimensions must be positive");
        Layers = layers;
        Slots = slots;
        Capacity = capacity;
        KDim = kDim;
        VDim = vDim;
        _k = (float*)NativeMemory.AllocZeroed((nuint)KBytesPerSlotLayer * (nuint)(layers * slots));
        _v = vDim == 0 ? null : (float*)NativeMemory.AllocZeroed((nuint)VBytesPerSlotLayer * (nuint)(layers * slots));
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
    /// <summary>Positions filled per slot (the next position to write).</summary>
    public int[] Lengths { get; }

    public long TotalBytes => (KBytesPerSlotLayer + VBytesPerSlotLayer) * Layers * Slots;

    private long KBytesPerSlotLayer => (long)Capacity * KDim * sizeof(float);
    private long VBytesPerSlotLayer => (long)Capacity * VDim * sizeof(float);

    /// <summary>The K block of one layer and slot: Capacity × KDim floats.</summary>
    public float* K(int layer, int slot) => _k + ((long)layer * Slots + slot) * Capacity * KDim;

    /// <summary>The V block of one layer and slot: Capacity × VDim floats; null when VDim is 0.</summary>
    public float* V(int layer, int slot) => _v == null ? null : _v + ((long)layer * Slots + slot) * Capacity * VDim;

    /// <summary>Forgets everything a slot holds from <paramref name="fromPos"/> on.</summary>
    public void Truncate(int slot, int fromPos = 0) => Lengths[slot] = Math.Min(Lengths[slot], Math.Max(0, fromPos));

    public void Dispose()
    {
        NativeMemory.Free(_k);
        NativeMemory.Free(_v);
        _k = null;
        _v = null;
    }
}
