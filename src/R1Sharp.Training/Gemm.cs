// The products of the trainer: C (+)= A·B with A (I×K), B (K×J), C (I×J) row-major with row strides. Four rows × 64
// columns of C stay in Vector512 registers while K is swept, so every row of B that is loaded serves four rows of A
// (then 4 × 16 blocks, then a scalar tail). The pooled Multiply splits C's rows over the threads and, for long K (the
// weight gradients dYᵀ·X sum over every token of a batch), each thread sweeps K in chunks whose rows of B stay in cache
// while its rows of C pass. Every element of C is made by the same operations in the same order whatever the thread
// count, so training gives the same weights at any --threads. MultiplySerial is the same kernel on the calling thread,
// for attention's per-head products, where a triangle of A or C is known to be zero (causal masks) and is skipped.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using R1Sharp.Kernels;

namespace R1Sharp.Training;

public static unsafe class Gemm
{
    /// <summary>Which part of a product is known: all of it, A lower or upper triangular, or only C's lower triangle wanted.</summary>
    public enum Triangle
    {
        None,
        /// <summary>A[i, k] = 0 for k &gt; i: row i reads k ≤ i only.</summary>
        LowerA,
        /// <summary>A[i, k] = 0 for k &lt; i: row i reads k ≥ i only.</summary>
        UpperA,
        /// <summary>Only C[i, j] for j ≤ i is wanted (a row block also writes up to its last row's column; the rest is left as it was).</summary>
        LowerC,
    }

    /// <summary>Rows of B kept in cache while C's rows sweep them (256 × 192 floats is 192 KiB).</summary>
    private const int KChunk = 256;

    private struct Job
    {
        public float* A, B, C;
        /// <summary>A[i, k] is at A + i·Sai + k·Sak: (lda, 1) for A, (1, lda) for a stored Aᵀ.</summary>
        public int Sai, Sak;
        public int Ldb, Ldc, I, K, J;
        public bool Accumulate;
        public Triangle Tri;
    }

    /// <summary>C = A·B, or C += A·B with <paramref name="accumulate"/>; contiguous rows (strides K, J, J).</summary>
    public static void Multiply(ComputePool pool, float* a, float* b, float* c, int i, int k, int j, bool accumulate) =>
        Multiply(pool, a, k, 1, b, c, i, k, j, accumulate);

    /// <summary>C = Aᵀ·B, or C += Aᵀ·B, with A stored (K × I): the weight gradient dYᵀ·X without transposing dY.</summary>
    public static void MultiplyTransposedA(ComputePool pool, float* a, float* b, float* c, int i, int k, int j, bool accumulate) =>
        Multiply(pool, a, 1, i, b, c, i, k, j, accumulate);

    private static void Multiply(ComputePool pool, float* a, int sai, int sak, float* b, float* c, int i, int k, int j, bool accumulate)
    {
        if (i == 0 || j == 0) return;
        var job = new Job { A = a, Sai = sai, Sak = sak, B = b, C = c, Ldb = j, Ldc = j, I = i, K = k, J = j, Accumulate = accumulate };
        // one job however long K: each thread sweeps the chunks over its own rows (fewer, larger steps when there are
        // chunks, so a chunk of B serves several row blocks), the same operations in the same order as one job per chunk
        pool.Run((i + 3) / 4, &ChunkedRowBlocks, &job, k > KChunk + KChunk / 2 ? 4 : ComputePool.StepsPerThread);
    }

    /// <summary>Row blocks [start, end) of C, K swept in chunks of <see cref="KChunk"/> (one chunk when K is short).</summary>
    private static void ChunkedRowBlocks(int start, int end, void* ctx)
    {
        var jb = *(Job*)ctx;
        int k = jb.K, chunk = k > KChunk + KChunk / 2 ? KChunk : Math.Max(k, 1);
        float* a = jb.A, b = jb.B;
        bool accumulate = jb.Accumulate;
        for (int k0 = 0; k0 < Math.Max(k, 1); k0 += chunk)
        {
            jb.A = a + (long)k0 * jb.Sak;
            jb.B = b + (long)k0 * jb.Ldb;
            jb.K = Math.Max(Math.Min(chunk, k - k0), 0);
            jb.Accumulate = accumulate || k0 > 0;
            RowBlocks(start, end, &jb);
        }
    }

    /// <summary>C (+)= A·B on the calling thread, with row strides and a known zero triangle.</summary>
    public static void MultiplySerial(float* a, int lda, float* b, int ldb, float* c, int ldc, int i, int k, int j, bool accumulate,
        Triangle tri = Triangle.None)
    {
        var job = new Job { A = a, Sai = lda, Sak = 1, B = b, C = c, Ldb = ldb, Ldc = ldc, I = i, K = k, J = j, Accumulate = accumulate, Tri = tri };
        RowBlocks(0, (i + 3) / 4, &job);
    }

    /// <summary>C (+)= Aᵀ·B on the calling thread, A stored (K × I) with row stride <paramref name="lda"/>: the same float
    /// operations as <see cref="MultiplySerial"/> on a transposed copy of A, without making the copy.</summary>
    public static void MultiplySerialTransposedA(float* a, int lda, float* b, int ldb, float* c, int ldc, int i, int k, int j, bool accumulate,
        Triangle tri = Triangle.None)
    {
        var job = new Job { A = a, Sai = 1, Sak = lda, B = b, C = c, Ldb = ldb, Ldc = ldc, I = i, K = k, J = j, Accumulate = accumulate, Tri = tri };
        RowBlocks(0, (i + 3) / 4, &job);
    }

    /// <summary>dst (cols × rows) = srcᵀ, src (rows × cols).</summary>
    public static void Transpose(ComputePool pool, float* src, float* dst, int rows, int cols)
    {
        var job = new Job { A = src, C = dst, I = rows, J = cols };
        pool.Run(cols, &TransposeCols, &job);
    }

    /// <summary>dst (cols × rows, stride ldd) = srcᵀ, src (rows × cols, stride lds), on the calling thread.</summary>
    public static void TransposeSerial(float* src, int lds, float* dst, int ldd, int rows, int cols)
    {
        const int B = 16;
        for (int r0 = 0; r0 < rows; r0 += B)
            for (int c0 = 0; c0 < cols; c0 += B)
            {
                int rEnd = Math.Min(rows, r0 + B), cEnd = Math.Min(cols, c0 + B);
                for (int r = r0; r < rEnd; r++)
                    for (int col = c0; col < cEnd; col++)
                        dst[(long)col * ldd + r] = src[(long)r * lds + col];
            }
    }

    private static void TransposeCols(int start, int end, void* ctx)
    {
        var j = (Job*)ctx;
        for (int col = start; col < end; col++)
        {
            float* d = j->C + (long)col * j->I;
            float* s = j->A + col;
            for (int r = 0; r < j->I; r++) d[r] = s[(long)r * j->J];
        }
    }

    private static void RowBlocks(int start, int end, void* ctx)
    {
        ref Job jb = ref *(Job*)ctx;
        for (int blk = start; blk < end; blk++)
        {
            int i0 = blk * 4, rows = Math.Min(4, jb.I - i0);
            int kLo = jb.Tri == Triangle.UpperA ? Math.Min(i0, jb.K) : 0;
            int kHi = jb.Tri == Triangle.LowerA ? Math.Min(jb.K, i0 + rows) : jb.K;
            int jHi = jb.Tri == Triangle.LowerC ? Math.Min(jb.J, i0 + rows) : jb.J;
            int j0 = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; j0 + 64 <= jHi; j0 += 64)
                {
                    if (rows == 4) Block4x64(ref jb, i0, j0, kLo, kHi);
                    else for (int r = 0; r < rows; r++) Block1x64(ref jb, i0 + r, j0, kLo, kHi);
                }
                for (; j0 + 16 <= jHi; j0 += 16)
                {
                    if (rows == 4) Block4x16(ref jb, i0, j0, kLo, kHi);
                    else for (int r = 0; r < rows; r++) Block1x16(ref jb, i0 + r, j0, kLo, kHi);
                }
            }
            if (j0 < jHi)
                for (int r = 0; r < rows; r++) RowTail(ref jb, i0 + r, j0, jHi, kLo, kHi);
        }
    }

    private static void Block4x64(ref Job jb, int i0, int j0, int kLo, int kHi)
    {
        int ldb = jb.Ldb, ldc = jb.Ldc, sai = jb.Sai, sak = jb.Sak;
        float* c0 = jb.C + (long)i0 * ldc + j0, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        Vector512<float> a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        if (jb.Accumulate)
        {
            a00 = Vector512.Load(c0); a01 = Vector512.Load(c0 + 16); a02 = Vector512.Load(c0 + 32); a03 = Vector512.Load(c0 + 48);
            a10 = Vector512.Load(c1); a11 = Vector512.Load(c1 + 16); a12 = Vector512.Load(c1 + 32); a13 = Vector512.Load(c1 + 48);
            a20 = Vector512.Load(c2); a21 = Vector512.Load(c2 + 16); a22 = Vector512.Load(c2 + 32); a23 = Vector512.Load(c2 + 48);
            a30 = Vector512.Load(c3); a31 = Vector512.Load(c3 + 16); a32 = Vector512.Load(c3 + 32); a33 = Vector512.Load(c3 + 48);
        }
        else
        {
            a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = Vector512<float>.Zero;
        }
        float* ar = jb.A + (long)i0 * sai + (long)kLo * sak;
        float* b = jb.B + (long)kLo * ldb + j0;
        for (int k = kLo; k < kHi; k++, b += ldb, ar += sak)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16); var b2 = Vector512.Load(b + 32); var b3 = Vector512.Load(b + 48);
            var x = Vector512.Create(ar[0]);
            a00 = Vector512.FusedMultiplyAdd(b0, x, a00); a01 = Vector512.FusedMultiplyAdd(b1, x, a01);
            a02 = Vector512.FusedMultiplyAdd(b2, x, a02); a03 = Vector512.FusedMultiplyAdd(b3, x, a03);
            x = Vector512.Create(ar[sai]);
            a10 = Vector512.FusedMultiplyAdd(b0, x, a10); a11 = Vector512.FusedMultiplyAdd(b1, x, a11);
            a12 = Vector512.FusedMultiplyAdd(b2, x, a12); a13 = Vector512.FusedMultiplyAdd(b3, x, a13);
            x = Vector512.Create(ar[2 * sai]);
            a20 = Vector512.FusedMultiplyAdd(b0, x, a20); a21 = Vector512.FusedMultiplyAdd(b1, x, a21);
            a22 = Vector512.FusedMultiplyAdd(b2, x, a22); a23 = Vector512.FusedMultiplyAdd(b3, x, a23);
            x = Vector512.Create(ar[3 * sai]);
            a30 = Vector512.FusedMultiplyAdd(b0, x, a30); a31 = Vector512.FusedMultiplyAdd(b1, x, a31);
            a32 = Vector512.FusedMultiplyAdd(b2, x, a32); a33 = Vector512.FusedMultiplyAdd(b3, x, a33);
        }
        a00.Store(c0); a01.Store(c0 + 16); a02.Store(c0 + 32); a03.Store(c0 + 48);
        a10.Store(c1); a11.Store(c1 + 16); a12.Store(c1 + 32); a13.Store(c1 + 48);
        a20.Store(c2); a21.Store(c2 + 16); a22.Store(c2 + 32); a23.Store(c2 + 48);
        a30.Store(c3); a31.Store(c3 + 16); a32.Store(c3 + 32); a33.Store(c3 + 48);
    }

    private static void Block4x16(ref Job jb, int i0, int j0, int kLo, int kHi)
    {
        int ldb = jb.Ldb, ldc = jb.Ldc, sai = jb.Sai, sak = jb.Sak;
        float* c0 = jb.C + (long)i0 * ldc + j0, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        Vector512<float> a0, a1, a2, a3;
        if (jb.Accumulate) { a0 = Vector512.Load(c0); a1 = Vector512.Load(c1); a2 = Vector512.Load(c2); a3 = Vector512.Load(c3); }
        else a0 = a1 = a2 = a3 = Vector512<float>.Zero;
        float* ar = jb.A + (long)i0 * sai + (long)kLo * sak;
        float* b = jb.B + (long)kLo * ldb + j0;
        for (int k = kLo; k < kHi; k++, b += ldb, ar += sak)
        {
            var bv = Vector512.Load(b);
            a0 = Vector512.FusedMultiplyAdd(bv, Vector512.Create(ar[0]), a0);
            a1 = Vector512.FusedMultiplyAdd(bv, Vector512.Create(ar[sai]), a1);
            a2 = Vector512.FusedMultiplyAdd(bv, Vector512.Create(ar[2 * sai]), a2);
            a3 = Vector512.FusedMultiplyAdd(bv, Vector512.Create(ar[3 * sai]), a3);
        }
        a0.Store(c0); a1.Store(c1); a2.Store(c2); a3.Store(c3);
    }

    private static void Block1x64(ref Job jb, int i, int j0, int kLo, int kHi)
    {
        int ldb = jb.Ldb;
        float* c = jb.C + (long)i * jb.Ldc + j0;
        Vector512<float> a0, a1, a2, a3;
        if (jb.Accumulate) { a0 = Vector512.Load(c); a1 = Vector512.Load(c + 16); a2 = Vector512.Load(c + 32); a3 = Vector512.Load(c + 48); }
        else a0 = a1 = a2 = a3 = Vector512<float>.Zero;
        float* ar = jb.A + (long)i * jb.Sai + (long)kLo * jb.Sak;
        float* b = jb.B + (long)kLo * ldb + j0;
        for (int k = kLo; k < kHi; k++, b += ldb, ar += jb.Sak)
        {
            var x = Vector512.Create(*ar);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(b), x, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(b + 16), x, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(b + 32), x, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(b + 48), x, a3);
        }
        a0.Store(c); a1.Store(c + 16); a2.Store(c + 32); a3.Store(c + 48);
    }

    private static void Block1x16(ref Job jb, int i, int j0, int kLo, int kHi)
    {
        int ldb = jb.Ldb;
        float* c = jb.C + (long)i * jb.Ldc + j0;
        var a0 = jb.Accumulate ? Vector512.Load(c) : Vector512<float>.Zero;
        float* ar = jb.A + (long)i * jb.Sai + (long)kLo * jb.Sak;
        float* b = jb.B + (long)kLo * ldb + j0;
        for (int k = kLo; k < kHi; k++, b += ldb, ar += jb.Sak) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(b), Vector512.Create(*ar), a0);
        a0.Store(c);
    }

    /// <summary>Columns j0..j1 of one row of C by row-of-B axpys (TensorPrimitives), for widths the blocks do not cover.</summary>
    private static void RowTail(ref Job jb, int i, int j0, int j1, int kLo, int kHi)
    {
        int w = j1 - j0;
        var c = new Span<float>(jb.C + (long)i * jb.Ldc + j0, w);
        if (!jb.Accumulate) c.Clear();
        float* ar = jb.A + (long)i * jb.Sai;
        for (int k = kLo; k < kHi; k++)
        {
            float x = ar[(long)k * jb.Sak];
            if (x != 0) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(jb.B + (long)k * jb.Ldb + j0, w), x, c, c);
        }
    }
}
