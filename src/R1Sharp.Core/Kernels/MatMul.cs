// y = W·x for a batch of tokens: the matrix-vector products of the forward pass.
// Activations are first converted once for all tokens to the weight type's vec_dot_type (as ggml does), then rows
// are split over the pool's threads. Decode (one token) streams each row once (two rows per call where the type has a
// two-row dot: Q4_K and Q6_K); prefill walks a block of tokens against a chunk of rows that stays in cache, a tile of
// tokens (4 or 8) per weight-row read, or, where the type has a packed path (Q8_0, Q4_K and Q6_K at 512 bits), 2 rows
// × 4 to 16 tokens per call from activations repacked 4 tokens to a group (a batch of 4 or more decoding sequences
// takes that path too). A weight rewritten at load into its type's interleaved layout (Q8_0 in groups of 16 rows, Q4_K
// and Q6_K of 8, Q5_0 of 16 at 512 bits and 8 at 256) is read a group of rows against a tile of tokens per call (Q8_0,
// Q4_K and Q5_0 at every batch size, prefill included; Q6_K up to 8 tokens, larger batches de-interleave a chunk of rows
// at a time for the packed kernel). A weight that
// interleaves on read (a mapped file) gives the same bits from its native rows: decode takes the type's kernel that
// scales each row's block sums as the interleaved one does (TypeKernels.DotGroupOnRead), small batches interleave each
// group into a buffer as they read it, and larger ones read its native rows where the others de-interleave theirs. Several
// products (gate and up, all experts of a layer, all heads of an MLA matrix) can share one pool pass, each with its
// own weight type and input; equal inputs are converted once.
using System.Runtime.CompilerServices;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

public static unsafe class MatMul
{
    /// <summary>Rows whose weights are reused from cache across a token block (whole interleaved groups).</summary>
    internal const int RowChunk = 16;
    /// <summary>Bytes of activations that stay in L2 while a row chunk is swept over them.</summary>
    private const long TokenBlockBytes = 512 * 1024;

    private struct Job
    {
        public byte* W;
        public long WRowBytes;
        public int Rows;
        public int Cols;
        public byte* Act;
        public long ActStride;
        public int NTokens;
        public float* Y;
        public delegate*<byte*, byte*, int, float> Dot;
        public delegate*<byte*, long, byte*, int, float*, long, void> Dot2;
        public delegate*<byte*, byte*, long, int, float*, long, void> DotTile;
        public int TileTokens;
        /// <summary>Activation rows past the last token are readable scratch, so a partial tile can run as a full one.</summary>
        public bool PaddedActivations;
        public delegate*<float*, byte*, int, void> Quantize;
        public float* X;
        /// <summary>Floats from one token's input row to the next.</summary>
        public int XStride;
        /// <summary>Floats from one token's output row to the next.</summary>
        public long YStride;
        /// <summary>This job converts the activations that it (and the jobs sharing its input) reads.</summary>
        public bool ConvertsActivations;
        /// <summary>Packed groups of the first PackedEnd tokens (a multiple of <see cref="TypeKernels.PackGroupTokens"/>), or null.</summary>
        public byte* Packed;
        public long GroupStride;
        public int PackedEnd;
        public delegate*<byte*, long, int, byte*, void> Pack;
        public delegate*<byte*, long, int, byte*, long, int, int, float*, long, void> DotPacked;
        /// <summary>
        /// The weight is in its type's interleaved layout: up to <see cref="InterleavedMaxTokens"/> tokens read it a
        /// group of <see cref="InterleaveRows"/> rows against up to <see cref="InterleaveTokens"/> tokens at a time;
        /// more tokens de-interleave row chunks for the prefill kernels.
        /// </summary>
        public bool Interleaved;
        /// <summary>The interleaved weight's bytes are in the native layout (read as <see cref="WeightMatrix.InterleavesOnRead"/>).</summary>
        public bool InterleavesOnRead;
        public int InterleaveRows;
        public int InterleaveTokens;
        public int InterleavedMaxTokens;
        public delegate*<byte*, byte*, long, int, int, float*, long, void> DotInterleaved;
        public delegate*<byte*, int, byte*, long, void> Deinterleave;
        public delegate*<byte*, long, int, byte*, void> Interleave;
        public delegate*<byte*, long, byte*, int, float*, void> DotGroupOnRead;

        /// <summary>The interleaved weight is read as it is (not de-interleaved for the prefill kernels).</summary>
        public readonly bool ReadsInterleaved => Interleaved && NTokens <= InterleavedMaxTokens;
    }

    /// <summary>
    /// y[t * Rows + r] = Σ_c W[r, c] · x[t * Cols + c] for t in [0, nTokens), r in [0, Rows), with activations rounded
    /// to ggml's vec_dot_type of the weight type (F32: none; F16/BF16: rounded to that type; Q8_0: quantized to Q8_0).
    /// </summary>
    public static void Compute(ComputePool pool, in WeightMatrix w, ReadOnlySpan<float> x, int nTokens, Span<float> y) =>
        Compute(pool, w, x, nTokens, y, KernelTable.Default);

    internal static void Compute(ComputePool pool, in WeightMatrix w, ReadOnlySpan<float> x, int nTokens, Span<float> y, KernelTable table)
    {
        Validate(pool, w, x, nTokens, y);
        fixed (float* px = x, py = y)
        {
            var p = new MatMulProduct(w, px, nTokens, py);
            Compute(pool, new ReadOnlySpan<MatMulProduct>(&p, 1), table);
        }
    }

    /// <summary>
    /// Two products of the same input (gate and up): the activations are converted once and both matrices' rows share
    /// one pass of the pool.
    /// </summary>
    public static void Compute(ComputePool pool, in WeightMatrix w0, in WeightMatrix w1, ReadOnlySpan<float> x, int nTokens,
        Span<float> y0, Span<float> y1)
    {
        Validate(pool, w0, x, nTokens, y0);
        Validate(pool, w1, x, nTokens, y1);
        fixed (float* px = x, p0 = y0, p1 = y1)
        {
            MatMulProduct* ps = stackalloc MatMulProduct[] { new(w0, px, nTokens, p0), new(w1, px, nTokens, p1) };
            Compute(pool, new ReadOnlySpan<MatMulProduct>(ps, 2), KernelTable.Default);
        }
    }

    /// <summary>Three products of the same input (Q, K, V), as the two-matrix overload.</summary>
    public static void Compute(ComputePool pool, in WeightMatrix w0, in WeightMatrix w1, in WeightMatrix w2, ReadOnlySpan<float> x,
        int nTokens, Span<float> y0, Span<float> y1, Span<float> y2)
    {
        Validate(pool, w0, x, nTokens, y0);
        Validate(pool, w1, x, nTokens, y1);
        Validate(pool, w2, x, nTokens, y2);
        fixed (float* px = x, p0 = y0, p1 = y1, p2 = y2)
        {
            MatMulProduct* ps = stackalloc MatMulProduct[] { new(w0, px, nTokens, p0), new(w1, px, nTokens, p1), new(w2, px, nTokens, p2) };
            Compute(pool, new ReadOnlySpan<MatMulProduct>(ps, 3), KernelTable.Default);
        }
    }

    /// <summary>
    /// Products of any weights, types and inputs in one pass of the pool (all experts of a layer, all heads' MLA
    /// matrices). Products whose inputs are the same rows (same pointer, stride, token count, width and activation
    /// layout) share one conversion. The caller guarantees the pointers cover what the products read and write.
    /// </summary>
    public static void Compute(ComputePool pool, ReadOnlySpan<MatMulProduct> products) => Compute(pool, products, KernelTable.Default);

    private static void Validate(ComputePool pool, in WeightMatrix w, ReadOnlySpan<float> x, int nTokens, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(nTokens);
        if (x.Length < (long)nTokens * w.Cols) throw new ArgumentException($"x holds {x.Length} values, need {nTokens} x {w.Cols}", nameof(x));
        if (y.Length < (long)nTokens * w.Rows) throw new ArgumentException($"y holds {y.Length} values, need {nTokens} x {w.Rows}", nameof(y));
        if (w.Data == null && w.Rows > 0 && nTokens > 0) throw new ArgumentException("weight data is null", nameof(w));
    }

    /// <summary>Bytes of the converted activations of a product (rows padded to a whole tile, then its packed groups).</summary>
    private static long ActivationBytes(in TypeKernels k, int cols, int nTokens)
    {
        long bytes = k.ActivationRowBytes(cols) * (nTokens + k.TileTokens - 1);
        if (k.DotPacked != null && nTokens >= TypeKernels.PackGroupTokens)
            bytes += k.PackedGroupBytes(cols) * (nTokens / TypeKernels.PackGroupTokens);
        return (bytes + 63) & ~63L;
    }

    /// <summary>
    /// Whether products a and b read the same rows converted the same way (packed for the prefill kernel or not). The
    /// kernels are compared by address: two addresses of one function may differ, which only costs a second conversion.
    /// </summary>
    private static bool SameInput(in MatMulProduct a, in TypeKernels ka, in MatMulProduct b, in TypeKernels kb) =>
        a.X == b.X && a.XStride == b.XStride && a.NTokens == b.NTokens && a.W.Cols == b.W.Cols && ka.TileTokens == kb.TileTokens
        && (nint)ka.QuantizeActivations == (nint)kb.QuantizeActivations && (nint)ka.ActivationRowBytes == (nint)kb.ActivationRowBytes
        && (nint)ka.PackActivations == (nint)kb.PackActivations && ReadsPacked(a, ka) == ReadsPacked(b, kb);

    /// <summary>Whether a product's rows take the packed prefill kernel (so its activations must be packed too).</summary>
    private static bool ReadsPacked(in MatMulProduct p, in TypeKernels k) =>
        k.DotPacked != null && p.NTokens >= TypeKernels.PackGroupTokens && !(p.W.ReadsInterleaved && p.NTokens <= k.InterleavedMaxTokens);

    internal static void Compute(ComputePool pool, ReadOnlySpan<MatMulProduct> products, KernelTable table)
    {
        ArgumentNullException.ThrowIfNull(pool);
        int count = products.Length;
        long work = 0;
        int totalRows = 0;
        foreach (ref readonly var p in products)
        {
            if (p.NTokens == 0) continue;
            totalRows += p.W.Rows;
            work += (long)p.W.Rows * p.W.Cols * p.NTokens;
        }
        if (totalRows == 0) return;

        // where each product's converted activations live: its own region, or that of an earlier product with the same input
        int* owner = stackalloc int[count];
        long* offset = stackalloc long[count];
        long jobBytes = ((long)count * sizeof(Job) + 63) & ~63L, total = jobBytes;
        for (int i = 0; i < count; i++)
        {
            ref readonly TypeKernels ki = ref table[products[i].W.Type];
            owner[i] = i;
            offset[i] = 0;
            if (ki.QuantizeActivations == null || products[i].NTokens == 0) continue;
            for (int j = 0; j < i; j++)
            {
                if (owner[j] == j && SameInput(products[i], ki, products[j], table[products[j].W.Type])) { owner[i] = j; break; }
            }
            if (owner[i] != i) continue;
            offset[i] = total;
            total += ActivationBytes(ki, products[i].W.Cols, products[i].NTokens);
        }
        byte* scratch = pool.Scratch(total);
        Job* jobs = (Job*)scratch;

        bool multiTokenInput = false;
        for (int i = 0; i < count; i++)
        {
            ref readonly var p = ref products[i];
            ref readonly TypeKernels k = ref table[p.W.Type];
            int cols = p.W.Cols;
            Job* j = jobs + i;
            *j = new Job
            {
                W = p.W.Data, WRowBytes = p.W.RowBytes, Rows = p.NTokens == 0 ? 0 : p.W.Rows, Cols = cols,
                X = p.X, XStride = p.XStride, NTokens = p.NTokens, Y = p.Y, YStride = p.YStride,
                Dot = k.Dot, Dot2 = k.Dot2, DotTile = k.DotTile, TileTokens = k.TileTokens, Quantize = k.QuantizeActivations,
                Interleaved = p.W.ReadsInterleaved, InterleavesOnRead = p.W.InterleavesOnRead, InterleaveRows = k.InterleaveRows,
                InterleaveTokens = k.InterleaveTokens, InterleavedMaxTokens = k.InterleavedMaxTokens, DotInterleaved = k.DotInterleaved,
                Deinterleave = k.Deinterleave, Interleave = k.Interleave, DotGroupOnRead = k.DotGroupOnRead,
            };
            if (p.W.ReadsInterleaved && k.DotInterleaved == null)
                throw new NotSupportedException($"the {table.Level} kernels of {p.W.Type} do not read its interleaved layout");
            if (k.QuantizeActivations == null)
            {
                j->Act = (byte*)p.X;
                j->ActStride = (long)p.XStride * sizeof(float);
                continue;
            }
            j->ActStride = k.ActivationRowBytes(cols);
            j->PaddedActivations = true;
            j->Act = scratch + offset[owner[i]];
            if (ReadsPacked(p, k))
            {
                j->PackedEnd = p.NTokens / TypeKernels.PackGroupTokens * TypeKernels.PackGroupTokens;
                j->GroupStride = k.PackedGroupBytes(cols);
                j->Pack = k.PackActivations;
                j->DotPacked = k.DotPacked;
                j->Packed = j->Act + j->ActStride * (p.NTokens + k.TileTokens - 1);
            }
            j->ConvertsActivations = owner[i] == i && p.NTokens > 0;
            multiTokenInput |= j->ConvertsActivations && p.NTokens > 1;
        }

        var multi = new MultiJob { Jobs = jobs, Count = count };
        if (multiTokenInput)
        {
            int groups = 0;
            for (int i = 0; i < count; i++) groups += GroupsToConvert(jobs + i);
            pool.Run(groups, &QuantizeMany, &multi);
        }
        else
        {
            for (int i = 0; i < count; i++)
                if (jobs[i].ConvertsActivations) jobs[i].Quantize(jobs[i].X, jobs[i].Act, jobs[i].Cols);
        }

        // a small product (MLA's per-head matrices in decode) costs less on the caller alone than a pool dispatch
        bool inline = work < InlineWork;
        if (count == 1)
        {
            delegate*<int, int, void*, void> rowsFn = jobs->NTokens == 1 ? &DecodeRows : &PrefillRows;
            if (inline) rowsFn(0, totalRows, jobs);
            else pool.Run(totalRows, rowsFn, jobs);
        }
        else
        {
            if (inline) MultiRows(0, totalRows, &multi);
            else pool.Run(totalRows, &MultiRows, &multi);
        }
    }

    /// <summary>Multiply-adds below which a product runs on the calling thread (a few microseconds of work).</summary>
    private const long InlineWork = 1 << 17;

    private struct MultiJob
    {
        public Job* Jobs;
        public int Count;
    }

    /// <summary>Rows [start, end) of the matrices laid end to end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiRows(int start, int end, void* ctx)
    {
        var m = (MultiJob*)ctx;
        int offset = 0;
        for (int i = 0; i < m->Count && offset < end; i++)
        {
            Job* j = m->Jobs + i;
            int s = Math.Max(start - offset, 0), e = Math.Min(end - offset, j->Rows);
            if (s < e)
            {
                if (j->NTokens == 1) DecodeRows(s, e, j);
                else PrefillRows(s, e, j);
            }
            offset += j->Rows;
        }
    }

    private static int GroupsToConvert(Job* j) =>
        j->ConvertsActivations ? (j->NTokens + TypeKernels.PackGroupTokens - 1) / TypeKernels.PackGroupTokens : 0;

    /// <summary>Groups [start, end) of 4 tokens of the inputs to convert, laid end to end: quantized, and packed where the packed path reads them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeMany(int start, int end, void* ctx)
    {
        var m = (MultiJob*)ctx;
        const int G = TypeKernels.PackGroupTokens;
        int offset = 0;
        for (int i = 0; i < m->Count && offset < end; i++)
        {
            Job* j = m->Jobs + i;
            int groups = GroupsToConvert(j);
            int g0 = Math.Max(start - offset, 0), g1 = Math.Min(end - offset, groups);
            for (int g = g0; g < g1; g++)
            {
                int t1 = Math.Min(j->NTokens, (g + 1) * G);
                for (int t = g * G; t < t1; t++) j->Quantize(j->X + (long)t * j->XStride, j->Act + t * j->ActStride, j->Cols);
                if ((g + 1) * G <= j->PackedEnd) j->Pack(j->Act + g * G * j->ActStride, j->ActStride, j->Cols, j->Packed + g * j->GroupStride);
            }
            offset += groups;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeRows(int start, int end, void* ctx)
    {
        var j = (Job*)ctx;
        if (j->Interleaved)
        {
            (start, end) = GroupRows(start, end, j->InterleaveRows);
            if (j->InterleavesOnRead && j->DotGroupOnRead != null)
            {
                for (int r = start; r < end; r += j->InterleaveRows)
                    j->DotGroupOnRead(j->W + r * j->WRowBytes, j->WRowBytes, j->Act, j->Cols, j->Y + r);
                return;
            }
            for (int r = start; r < end; r += j->InterleaveRows)
                j->DotInterleaved(Group(j, r), j->Act, 0, 1, j->Cols, j->Y + r, 0);
            return;
        }
        byte* w = j->W + start * j->WRowBytes;
        // rows r and r + h together: two streams that each run forward (two neighbouring rows read in turn defeat the
        // hardware prefetcher: a quarter of the bandwidth measured from DRAM)
        int h = j->Dot2 != null ? (end - start) / 2 : 0;
        for (int r = start; r < start + h; r++, w += j->WRowBytes) j->Dot2(w, h * j->WRowBytes, j->Act, j->Cols, j->Y + r, h);
        w += h * j->WRowBytes;
        for (int r = start + 2 * h; r < end; r++, w += j->WRowBytes) j->Y[r] = j->Dot(w, j->Act, j->Cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PrefillRows(int start, int end, void* ctx)
    {
        var j = (Job*)ctx;
        if (j->ReadsInterleaved)
        {
            InterleavedRows(start, end, j);
            return;
        }
        // an interleaved weight's row chunks (whole groups) are de-interleaved into scratch (or read in place where
        // they interleave on read: the same rows)
        if (j->Interleaved) (start, end) = GroupRows(start, end, j->InterleaveRows);
        long rows = j->YStride;
        int cols = j->Cols;
        float* yt = stackalloc float[TypeKernels.MaxTileTokens];
        int step = j->Packed != null ? TypeKernels.PackedTokens : j->TileTokens;
        int tokenBlock = TokenBlock(j, step);
        for (int t0 = 0; t0 < j->NTokens; t0 += tokenBlock)
        {
            int t1 = Math.Min(j->NTokens, t0 + tokenBlock);
            for (int r0 = start; r0 < end; r0 += RowChunk)
            {
                int r1 = Math.Min(end, r0 + RowChunk);
                // weight row r of this chunk at w + r * WRowBytes
                byte* w = j->Interleaved && !j->InterleavesOnRead ? Deinterleaved(j, r0, r1) - r0 * j->WRowBytes : j->W;
                int t = t0;
                const int G = TypeKernels.PackGroupTokens;
                for (int packedEnd = Math.Min(t1, j->PackedEnd); t + G <= packedEnd;)
                {
                    int groups = Math.Min(TypeKernels.MaxPackedGroups, (packedEnd - t) / G);
                    byte* packed = j->Packed + t / G * j->GroupStride;
                    for (int r = r0; r < r1; r += TypeKernels.PackedRows)
                    {
                        j->DotPacked(w + r * j->WRowBytes, j->WRowBytes, Math.Min(TypeKernels.PackedRows, r1 - r), packed, j->GroupStride, groups, cols,
                            j->Y + (long)t * rows + r, rows);
                    }
                    t += groups * G;
                }
                for (; t + j->TileTokens <= t1; t += j->TileTokens)
                {
                    byte* act = j->Act + t * j->ActStride;
                    for (int r = r0; r < r1; r++) j->DotTile(w + r * j->WRowBytes, act, j->ActStride, cols, j->Y + (long)t * rows + r, rows);
                }
                int rest = t1 - t;
                if (rest > 0 && j->PaddedActivations && rest * 4 >= j->TileTokens * 3)
                {
                    // a tile costs about as much as 3/4 of its tokens done one at a time (batched decode lands here)
                    byte* act = j->Act + t * j->ActStride;
                    for (int r = r0; r < r1; r++)
                    {
                        j->DotTile(w + r * j->WRowBytes, act, j->ActStride, cols, yt, 1);
                        for (int i = 0; i < rest; i++) j->Y[(long)(t + i) * rows + r] = yt[i];
                    }
                    t = t1;
                }
                for (; t < t1; t++)
                {
                    byte* act = j->Act + t * j->ActStride;
                    for (int r = r0; r < r1; r++) j->Y[(long)t * rows + r] = j->Dot(w + r * j->WRowBytes, act, cols);
                }
            }
        }
    }

    /// <summary>
    /// The groups of an interleaved weight that start in rows [start, end), against all tokens: a block of tokens at a
    /// time (their activations stay in L2) and the type's tile of tokens per read of a group.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InterleavedRows(int start, int end, Job* j)
    {
        int T = j->InterleaveTokens;
        long rows = j->YStride;
        int tokenBlock = TokenBlock(j, T);
        (start, end) = GroupRows(start, end, j->InterleaveRows);
        for (int t0 = 0; t0 < j->NTokens; t0 += tokenBlock)
        {
            int t1 = Math.Min(j->NTokens, t0 + tokenBlock);
            for (int r = start; r < end; r += j->InterleaveRows)
            {
                byte* w = Group(j, r);
                for (int t = t0; t < t1; t += T)
                    j->DotInterleaved(w, j->Act + t * j->ActStride, j->ActStride, Math.Min(T, t1 - t), j->Cols, j->Y + t * rows + r, rows);
            }
        }
    }

    /// <summary>
    /// The rows of the interleaved groups that start in [start, end): the pool's contiguous row ranges, so rounded,
    /// cover every group once.
    /// </summary>
    private static (int Start, int End) GroupRows(int start, int end, int group) =>
        ((start + group - 1) / group * group, (end + group - 1) / group * group);

    /// <summary>Tokens per block (a multiple of step) whose activations stay in L2 while a row chunk is swept over them.</summary>
    private static int TokenBlock(Job* j, int step) =>
        Math.Max(step, (int)Math.Clamp(TokenBlockBytes / Math.Max(j->ActStride, 1), 1, 256) / step * step);

    /// <summary>
    /// This thread's buffer for weight rows changed between layouts (grown, never shrunk: a row chunk's worth, or one
    /// group's).
    /// </summary>
    [ThreadStatic] private static byte* t_rows;
    [ThreadStatic] private static long t_rowsBytes;

    private static byte* RowsBuffer(long bytes)
    {
        if (t_rowsBytes < bytes)
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(t_rows);
            t_rows = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64);
            t_rowsBytes = bytes;
        }
        return t_rows;
    }

    /// <summary>Rows [r0, r1) (whole groups) of an interleaved weight in the native layout, in this thread's buffer.</summary>
    private static byte* Deinterleaved(Job* j, int r0, int r1)
    {
        byte* rows = RowsBuffer((r1 - r0) * j->WRowBytes);
        for (int r = r0; r < r1; r += j->InterleaveRows)
            j->Deinterleave(j->W + r * j->WRowBytes, j->Cols, rows + (r - r0) * j->WRowBytes, j->WRowBytes);
        return rows;
    }

    /// <summary>The interleaved group of rows [r, r + InterleaveRows): in place, or made in this thread's buffer from native rows.</summary>
    private static byte* Group(Job* j, int r)
    {
        byte* w = j->W + r * j->WRowBytes;
        if (!j->InterleavesOnRead) return w;
        byte* group = RowsBuffer(j->InterleaveRows * j->WRowBytes);
        j->Interleave(w, j->WRowBytes, j->Cols, group);
        return group;
    }
}

/// <summary>
/// One product of <see cref="MatMul.Compute(ComputePool, ReadOnlySpan{MatMulProduct})"/>:
/// y[t * YStride + r] = Σ_c W[r, c] · x[t * XStride + c] for t in [0, NTokens), r in [0, W.Rows).
/// </summary>
public readonly unsafe struct MatMulProduct
{
    /// <summary>Contiguous rows: x is (nTokens, W.Cols), y is (nTokens, W.Rows).</summary>
    public MatMulProduct(in WeightMatrix w, float* x, int nTokens, float* y) : this(w, x, w.Cols, nTokens, y, w.Rows) { }

    public MatMulProduct(in WeightMatrix w, float* x, int xStride, int nTokens, float* y, long yStride)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(nTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(xStride, w.Cols);
        ArgumentOutOfRangeException.ThrowIfLessThan(yStride, w.Rows);
        if (nTokens > 0 && w.Rows > 0 && (w.Data == null || x == null || y == null)) throw new ArgumentException("a product with work needs weights, input and output");
        W = w;
        X = x;
        XStride = xStride;
        NTokens = nTokens;
        Y = y;
        YStride = yStride;
    }

    public WeightMatrix W { get; }
    public float* X { get; }
    public int XStride { get; }
    public int NTokens { get; }
    public float* Y { get; }
    public long YStride { get; }
}
