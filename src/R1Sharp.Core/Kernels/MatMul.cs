// y = W·x for a batch of tokens: the matrix-vector products of the forward pass.
// Activations are first converted once for all tokens to the weight type's vec_dot_type (as ggml does), then rows
// are split over the pool's threads. Decode (one token) streams each row once (two rows per call where the type has a
// two-row dot: Q4_K and Q6_K); prefill walks a block of tokens
// against a chunk of rows that stays in cache, a tile of tokens (4 or 8) per weight-row read, or, where the type has a
// packed path (Q8_0, Q4_K and Q6_K at 512 bits), 2 rows × 4 to 16 tokens per call from activations repacked 4 tokens
// to a group (a batch of 4 or more decoding sequences takes that path too).
using System.Runtime.CompilerServices;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

public static unsafe class MatMul
{
    /// <summary>Rows whose weights are reused from cache across a token block.</summary>
    private const int RowChunk = 16;
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
        /// <summary>Packed groups of the first PackedEnd tokens (a multiple of <see cref="TypeKernels.PackGroupTokens"/>), or null.</summary>
        public byte* Packed;
        public long GroupStride;
        public int PackedEnd;
        public delegate*<byte*, long, int, byte*, void> Pack;
        public delegate*<byte*, long, int, byte*, long, int, int, float*, long, void> DotPacked;
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
            var ws = w;
            Compute(pool, &ws, &py, 1, px, nTokens, table);
        }
    }

    /// <summary>
    /// Two products of the same input (gate and up): the activations are converted once and both matrices' rows share
    /// one pass of the pool. Matrices of different types or widths run one after the other.
    /// </summary>
    public static void Compute(ComputePool pool, in WeightMatrix w0, in WeightMatrix w1, ReadOnlySpan<float> x, int nTokens,
        Span<float> y0, Span<float> y1)
    {
        Validate(pool, w0, x, nTokens, y0);
        Validate(pool, w1, x, nTokens, y1);
        if (w0.Type != w1.Type || w0.Cols != w1.Cols)
        {
            Compute(pool, w0, x, nTokens, y0);
            Compute(pool, w1, x, nTokens, y1);
            return;
        }
        fixed (float* px = x, p0 = y0, p1 = y1)
        {
            WeightMatrix* ws = stackalloc WeightMatrix[] { w0, w1 };
            float** ys = stackalloc float*[] { p0, p1 };
            Compute(pool, ws, ys, 2, px, nTokens, KernelTable.Default);
        }
    }

    /// <summary>Three products of the same input (Q, K, V), as the two-matrix overload.</summary>
    public static void Compute(ComputePool pool, in WeightMatrix w0, in WeightMatrix w1, in WeightMatrix w2, ReadOnlySpan<float> x,
        int nTokens, Span<float> y0, Span<float> y1, Span<float> y2)
    {
        Validate(pool, w0, x, nTokens, y0);
        Validate(pool, w1, x, nTokens, y1);
        Validate(pool, w2, x, nTokens, y2);
        if (w0.Type != w1.Type || w0.Type != w2.Type || w0.Cols != w1.Cols || w0.Cols != w2.Cols)
        {
            Compute(pool, w0, x, nTokens, y0);
            Compute(pool, w1, x, nTokens, y1);
            Compute(pool, w2, x, nTokens, y2);
            return;
        }
        fixed (float* px = x, p0 = y0, p1 = y1, p2 = y2)
        {
            WeightMatrix* ws = stackalloc WeightMatrix[] { w0, w1, w2 };
            float** ys = stackalloc float*[] { p0, p1, p2 };
            Compute(pool, ws, ys, 3, px, nTokens, KernelTable.Default);
        }
    }

    private static void Validate(ComputePool pool, in WeightMatrix w, ReadOnlySpan<float> x, int nTokens, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(nTokens);
        if (x.Length < (long)nTokens * w.Cols) throw new ArgumentException($"x holds {x.Length} values, need {nTokens} x {w.Cols}", nameof(x));
        if (y.Length < (long)nTokens * w.Rows) throw new ArgumentException($"y holds {y.Length} values, need {nTokens} x {w.Rows}", nameof(y));
        if (w.Data == null && w.Rows > 0 && nTokens > 0) throw new ArgumentException("weight data is null", nameof(w));
    }

    /// <summary>Matrices of one type and width against the same activations, converted once; rows of all run in one pool pass.</summary>
    private static void Compute(ComputePool pool, WeightMatrix* ws, float** ys, int count, float* px, int nTokens, KernelTable table)
    {
        int totalRows = 0;
        for (int i = 0; i < count; i++) totalRows += ws[i].Rows;
        if (nTokens == 0 || totalRows == 0) return;
        ref readonly TypeKernels k = ref table[ws[0].Type];
        int cols = ws[0].Cols;
        var job = new Job
        {
            Cols = cols, NTokens = nTokens, X = px, Dot = k.Dot, Dot2 = k.Dot2, DotTile = k.DotTile, TileTokens = k.TileTokens, Quantize = k.QuantizeActivations,
        };
        if (k.QuantizeActivations == null)
        {
            job.Act = (byte*)px;
            job.ActStride = (long)cols * sizeof(float);
        }
        else
        {
            job.ActStride = k.ActivationRowBytes(cols);
            long actBytes = job.ActStride * (nTokens + k.TileTokens - 1);
            job.PaddedActivations = true;
            if (k.DotPacked != null && nTokens >= TypeKernels.PackGroupTokens)
            {
                job.PackedEnd = nTokens / TypeKernels.PackGroupTokens * TypeKernels.PackGroupTokens;
                job.GroupStride = k.PackedGroupBytes(cols);
                job.Pack = k.PackActivations;
                job.DotPacked = k.DotPacked;
                job.Act = pool.Scratch(actBytes + job.GroupStride * (job.PackedEnd / TypeKernels.PackGroupTokens));
                job.Packed = job.Act + actBytes;
            }
            else
            {
                job.Act = pool.Scratch(actBytes);
            }
            if (nTokens == 1) k.QuantizeActivations(px, job.Act, cols);
            else pool.Run((nTokens + TypeKernels.PackGroupTokens - 1) / TypeKernels.PackGroupTokens, &QuantizeGroups, &job);
        }
        Job* jobs = stackalloc Job[count];
        for (int i = 0; i < count; i++)
        {
            jobs[i] = job;
            jobs[i].W = ws[i].Data;
            jobs[i].WRowBytes = ws[i].RowBytes;
            jobs[i].Rows = ws[i].Rows;
            jobs[i].Y = ys[i];
        }
        // a small product (MLA's per-head matrices in decode) costs less on the caller alone than a pool dispatch
        bool inline = (long)totalRows * cols * nTokens < InlineWork;
        if (count == 1)
        {
            delegate*<int, int, void*, void> rowsFn = nTokens == 1 ? &DecodeRows : &PrefillRows;
            if (inline) rowsFn(0, totalRows, jobs);
            else pool.Run(totalRows, rowsFn, jobs);
        }
        else
        {
            var multi = new MultiJob { Jobs = jobs, Count = count };
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

    /// <summary>Quantizes the tokens of groups [start, end) of 4, and packs those that the packed path reads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeGroups(int start, int end, void* ctx)
    {
        var j = (Job*)ctx;
        const int G = TypeKernels.PackGroupTokens;
        for (int g = start; g < end; g++)
        {
            int t1 = Math.Min(j->NTokens, (g + 1) * G);
            for (int t = g * G; t < t1; t++) j->Quantize(j->X + (long)t * j->Cols, j->Act + t * j->ActStride, j->Cols);
            if ((g + 1) * G <= j->PackedEnd) j->Pack(j->Act + g * G * j->ActStride, j->ActStride, j->Cols, j->Packed + g * j->GroupStride);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeRows(int start, int end, void* ctx)
    {
        var j = (Job*)ctx;
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
        int rows = j->Rows, cols = j->Cols;
        float* yt = stackalloc float[TypeKernels.MaxTileTokens];
        int step = j->Packed != null ? TypeKernels.PackedTokens : j->TileTokens;
        int tokenBlock = (int)Math.Clamp(TokenBlockBytes / Math.Max(j->ActStride, 1), 1, 256) / step * step;
        tokenBlock = Math.Max(tokenBlock, step);
        for (int t0 = 0; t0 < j->NTokens; t0 += tokenBlock)
        {
            int t1 = Math.Min(j->NTokens, t0 + tokenBlock);
            for (int r0 = start; r0 < end; r0 += RowChunk)
            {
                int r1 = Math.Min(end, r0 + RowChunk);
                int t = t0;
                const int G = TypeKernels.PackGroupTokens;
                for (int packedEnd = Math.Min(t1, j->PackedEnd); t + G <= packedEnd;)
                {
                    int groups = Math.Min(TypeKernels.MaxPackedGroups, (packedEnd - t) / G);
                    byte* packed = j->Packed + t / G * j->GroupStride;
                    for (int r = r0; r < r1; r += TypeKernels.PackedRows)
                    {
                        j->DotPacked(j->W + r * j->WRowBytes, j->WRowBytes, Math.Min(TypeKernels.PackedRows, r1 - r), packed, j->GroupStride, groups, cols,
                            j->Y + (long)t * rows + r, rows);
                    }
                    t += groups * G;
                }
                for (; t + j->TileTokens <= t1; t += j->TileTokens)
                {
                    byte* act = j->Act + t * j->ActStride;
                    for (int r = r0; r < r1; r++) j->DotTile(j->W + r * j->WRowBytes, act, j->ActStride, cols, j->Y + (long)t * rows + r, rows);
                }
                int rest = t1 - t;
                if (rest > 0 && j->PaddedActivations && rest * 4 >= j->TileTokens * 3)
                {
                    // a tile costs about as much as 3/4 of its tokens done one at a time (batched decode lands here)
                    byte* act = j->Act + t * j->ActStride;
                    for (int r = r0; r < r1; r++)
                    {
                        j->DotTile(j->W + r * j->WRowBytes, act, j->ActStride, cols, yt, 1);
                        for (int i = 0; i < rest; i++) j->Y[(long)(t + i) * rows + r] = yt[i];
                    }
                    t = t1;
                }
                for (; t < t1; t++)
                {
                    byte* act = j->Act + t * j->ActStride;
                    for (int r = r0; r < r1; r++) j->Y[(long)t * rows + r] = j->Dot(j->W + r * j->WRowBytes, act, cols);
                }
            }
        }
    }
}
