// The kernel table: one entry per tensor type, chosen once per tensor, so kernels never branch on the type.
// Adding a type is one XxxKernels.Create(level) and one line in KernelTable.Create.
// Hot kernels carry [MethodImpl(AggressiveOptimization)]: they are compiled optimized on first call instead of
// running the first forward passes as unoptimized tier-0 code.
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

/// <summary>The kernels of one weight type at one SIMD level.</summary>
internal readonly unsafe struct TypeKernels
{
    public GgmlType Type { get; init; }

    /// <summary>ggml's vec_dot_type: what activations are rounded or quantized to before the dot product.</summary>
    public GgmlType VecDotType { get; init; }

    /// <summary>
    /// Bytes of one activation row of n values in the (internal) layout <see cref="Dot"/> reads, a multiple of 64.
    /// For F32 weights this is the input itself and <see cref="QuantizeActivations"/> is null.
    /// </summary>
    public delegate*<int, long> ActivationRowBytes { get; init; }

    /// <summary>(x, act, n): converts n floats into one activation row, with ggml's rounding for <see cref="VecDotType"/>.</summary>
    public delegate*<float*, byte*, int, void> QuantizeActivations { get; init; }

    /// <summary>(act, dst, n): the values an activation row stands for (tests hold them to ggml's rounding).</summary>
    public delegate*<byte*, float*, int, void> ActivationsToFloat { get; init; }

    /// <summary>(w, act, n): the dot product of one weight row with one activation row of n values.</summary>
    public delegate*<byte*, byte*, int, float> Dot { get; init; }

    /// <summary>
    /// (w, act, actStride, n, y, yStride): one weight row against <see cref="TileTokens"/> activation rows actStride
    /// bytes apart; y[t * yStride] = dot(w, act + t * actStride). The weight row is read once for the whole tile.
    /// </summary>
    public delegate*<byte*, byte*, long, int, float*, long, void> DotTile { get; init; }

    /// <summary>Tokens per <see cref="DotTile"/> call (at most <see cref="MaxTileTokens"/>): as many accumulators as fit in registers.</summary>
    public int TileTokens { get; init; }

    public const int MaxTileTokens = 16;

    /// <summary>(src, dst, n): one row of n values to floats.</summary>
    public delegate*<byte*, float*, int, void> DequantizeRow { get; init; }

    /// <summary>(src, dst, n): n floats to one row of this type (ggml's reference quantization, for weights).</summary>
    public delegate*<float*, byte*, int, void> QuantizeRow { get; init; }

    // ---- optional packed prefill path (fields added after the ones above; null where a type has none) ----

    /// <summary>(n): bytes of one packed group of <see cref="PackGroupTokens"/> activation rows of n values, a multiple of 64.</summary>
    public delegate*<int, long> PackedGroupBytes { get; init; }

    /// <summary>(act, actStride, n, dst): <see cref="PackGroupTokens"/> activation rows actStride bytes apart repacked into one group.</summary>
    public delegate*<byte*, long, int, byte*, void> PackActivations { get; init; }

    /// <summary>
    /// (w, wStride, rows, packed, groupStride, groups, n, y, yStride): rows (1 or <see cref="PackedRows"/>) weight rows
    /// wStride bytes apart against groups (1 to <see cref="MaxPackedGroups"/>) packed groups of <see cref="PackGroupTokens"/>
    /// tokens, consecutive groups groupStride bytes apart; y[t * yStride + r]. A (row, token) result does not depend on
    /// how many rows or groups ran with it.
    /// </summary>
    public delegate*<byte*, long, int, byte*, long, int, int, float*, long, void> DotPacked { get; init; }

    // ---- optional two-row decode dot (null where a type has none) ----

    /// <summary>
    /// (w, wStride, act, n, y, yStride): two weight rows wStride bytes apart against one activation row;
    /// y[0] and y[yStride] are bit for bit what <see cref="Dot"/> gives for each row alone.
    /// </summary>
    public delegate*<byte*, long, byte*, int, float*, long, void> Dot2 { get; init; }

    // ---- optional interleaved decode layout (null where a type has none) ----

    /// <summary>
    /// (src, rowBytes, n, dst): <see cref="InterleaveRows"/> rows rowBytes apart into the interleaved layout at dst, the
    /// same number of bytes (a weight is rewritten once, at load, group by group).
    /// </summary>
    public delegate*<byte*, long, int, byte*, void> Interleave { get; init; }

    /// <summary>(src, n, dst, rowBytes): the inverse of <see cref="Interleave"/>.</summary>
    public delegate*<byte*, int, byte*, long, void> Deinterleave { get; init; }

    /// <summary>
    /// (w, act, actStride, tokens, n, y, yStride): one interleaved group against 1 to <see cref="InterleaveTokens"/>
    /// activation rows actStride bytes apart; y[t * yStride + r] for its rows r. A token's results do not depend on
    /// how many tokens ran with it (decode and prefill agree bit for bit).
    /// </summary>
    public delegate*<byte*, byte*, long, int, int, float*, long, void> DotInterleaved { get; init; }

    /// <summary>
    /// (w, rowBytes, act, n, y): optional: one group of <see cref="InterleaveRows"/> native rows rowBytes apart against
    /// one activation row, bit for bit what <see cref="DotInterleaved"/> gives for the group interleaved, without
    /// interleaving it first (decode of a matrix that interleaves on read).
    /// </summary>
    public delegate*<byte*, long, byte*, int, float*, void> DotGroupOnRead { get; init; }

    /// <summary>Rows per interleaved group.</summary>
    public int InterleaveRows { get; init; }

    /// <summary>Tokens per <see cref="DotInterleaved"/> call (at most <see cref="MaxInterleaveTokens"/>).</summary>
    public int InterleaveTokens { get; init; }

    public const int MaxInterleaveTokens = 8;

    /// <summary>This table entry with an interleaved layout: its rewrite, the inverse, its dot and their sizes.</summary>
    public TypeKernels WithInterleaved(delegate*<byte*, long, int, byte*, void> interleave, delegate*<byte*, int, byte*, long, void> deinterleave,
        delegate*<byte*, byte*, long, int, int, float*, long, void> dot, int rows, int tokens, int maxTokens) => this with
    {
        Interleave = interleave, Deinterleave = deinterleave, DotInterleaved = dot,
        InterleaveRows = rows, InterleaveTokens = tokens, InterleavedMaxTokens = maxTokens,
    };

    /// <summary>
    /// Batches up to this many tokens read an interleaved weight as it is; larger ones de-interleave row chunks for the
    /// packed prefill kernel, where that is faster (int.MaxValue where the interleaved kernel is the faster one throughout).
    /// </summary>
    public int InterleavedMaxTokens { get; init; }

    public const int PackGroupTokens = 4;
    public const int PackedRows = 2;
    public const int MaxPackedGroups = 4;
    public const int PackedTokens = PackGroupTokens * MaxPackedGroups;

    public bool IsPresent => Dot != null;
}

/// <summary>The kernels of every supported type at one SIMD level.</summary>
internal sealed unsafe class KernelTable
{
    private readonly TypeKernels[] _byType = new TypeKernels[64];

    private KernelTable(SimdLevel level) => Level = level;

    /// <summary>The table for the widest SIMD level of this machine.</summary>
    public static KernelTable Default { get; } = Create(Simd.Best);

    public SimdLevel Level { get; }

    public static KernelTable Create(SimdLevel level)
    {
        if (!Simd.IsSupported(level)) throw new PlatformNotSupportedException($"{level} is not supported on this machine");
        var table = new KernelTable(level);
        table.Add(F32Kernels.Create(level));
        table.Add(F16Kernels.Create(level));
        table.Add(BF16Kernels.Create(level));
        table.Add(Q8_0Kernels.Create(level));
        table.Add(Q4_0Kernels.Create(level));
        table.Add(Vector128BlockDots.Legacy<Q4_1Values>(QuantBlockKernels.Create<Q4_1Block>(), level));
        table.Add(Q5_0Kernels.Create(level));
        table.Add(Vector128BlockDots.Legacy<Q5_1Values>(QuantBlockKernels.Create<Q5_1Block>(), level));
        table.Add(Q2KKernels.Create(level));
        table.Add(Vector128BlockDots.KQuant(QuantBlockKernels.Create<Q3_KBlock>(), level));
        table.Add(Q4KKernels.Create(level));
        table.Add(Q5KKernels.Create(level));
        table.Add(Q6KKernels.Create(level));
        table.Add(IqKernels.Create<IQ2_XXSBlock, Iq2XxsGroups>(level));
        table.Add(IqKernels.Create<IQ2_XSBlock, Iq2XsGroups>(level));
        table.Add(IqKernels.Create<IQ2_SBlock, Iq2SGroups>(level));
        table.Add(IqKernels.Create<IQ3_XXSBlock, Iq3XxsGroups>(level));
        table.Add(IqKernels.Create<IQ3_SBlock, Iq3SGroups>(level));
        table.Add(IqKernels.Create<IQ1_SBlock, Iq1SGroups>(level));
        table.Add(IqKernels.Create<IQ1_MBlock, Iq1MGroups>(level));
        table.Add(NonLinear32Kernels.Create<IQ4_NLBlock, Iq4NlBlock32>(level));
        table.Add(Iq4XsKernels.Create(level));
        table.Add(IqKernels.Create<TQ1_0Block, Tq1Groups>(level));
        table.Add(IqKernels.Create<TQ2_0Block, Tq2Groups>(level));
        table.Add(NonLinear32Kernels.Create<MXFP4Block, Mxfp4Block32>(level));
        return table;
    }

    public bool Supports(GgmlType type) => (uint)type < (uint)_byType.Length && _byType[(int)type].IsPresent;

    public ref readonly TypeKernels this[GgmlType type]
    {
        get
        {
            if (!Supports(type)) throw new NotSupportedException($"no kernels for tensor type {type}");
            return ref _byType[(int)type];
        }
    }

    private void Add(in TypeKernels k)
    {
        if (k.TileTokens is < 1 or > TypeKernels.MaxTileTokens) throw new InvalidOperationException($"{k.Type}: bad tile size {k.TileTokens}");
        if (k.DotInterleaved != null && (k.InterleaveRows < 1 || MatMul.RowChunk % k.InterleaveRows != 0 || k.InterleaveTokens is < 1 or > TypeKernels.MaxInterleaveTokens || k.InterleavedMaxTokens < 1))
            throw new InvalidOperationException($"{k.Type}: bad interleaved layout ({k.InterleaveRows} rows, {k.InterleaveTokens} tokens)");
        _byType[(int)k.Type] = k;
    }
}
