// The products of the backward pass: C (+)= A·B with A (I×K), B (K×J), C (I×J) row-major, rows of C split over the
// pool's threads. Four rows × 64 columns of C stay in Vector512 registers while K is swept, so every row of B that is
// loaded serves four rows of A. dX = dY·W and dW += dYᵀ·X are both this shape (the latter after a transpose).
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using R1Sharp.Kernels;

namespace R1Sharp.Training;

public static unsafe class Gemm
{
    private struct Job
    {
        public float* A, B, C;
        public int I, K, J;
        public bool Accumulate;
    }

    /// <summary>C = A·B, or C += A·B with <paramref name="accumulate"/>.</summary>
    public static void Multiply(ComputePool pool, float* a, float* b, float* c, int i, int k, int j, bool accumulate)
    {
        if (i == 0 || j == 0) return;
        var job = new Job { A = a, B = b, C = c, I = i, K = k, J = j, Accumulate = accumulate };
        pool.Run((i + 3) / 4, &RowBlocks, &job);
    }

    /// <summary>dst (cols × rows) = srcᵀ, src (rows × cols).</summary>
    public static void Transpose(ComputePool pool, float* src, float* dst, int rows, int cols)
    {
        var job = new Job { A = src, C = dst, I = rows, J = cols };
        pool.Run(cols, &TransposeCols, &job);
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
            int j0 = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; j0 + 64 <= jb.J; j0 += 64)
                {
                    if (rows == 4) Block4x64(ref jb, i0, j0);
                    else for (int r = 0; r < rows; r++) Block1x64(ref jb, i0 + r, j0);
                }
            }
            if (j0 < jb.J)
                for (int r = 0; r < rows; r++) RowTail(ref jb, i0 + r, j0);
        }
    }

    private static void Block4x64(ref Job jb, int i0, int j0)
    {
        int K = jb.K, J = jb.J;
        float* c0 = jb.C + (long)i0 * J + j0, c1 = c0 + J, c2 = c1 + J, c3 = c2 + J;
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
        float* r0 = jb.A + (long)i0 * K, r1 = r0 + K, r2 = r1 + K, r3 = r2 + K;
        float* b = jb.B + j0;
        for (int k = 0; k < K; k++, b += J)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16); var b2 = Vector512.Load(b + 32); var b3 = Vector512.Load(b + 48);
            var x = Vector512.Create(r0[k]);
            a00 = Vector512.FusedMultiplyAdd(b0, x, a00); a01 = Vector512.FusedMultiplyAdd(b1, x, a01);
            a02 = Vector512.FusedMultiplyAdd(b2, x, a02); a03 = Vector512.FusedMultiplyAdd(b3, x, a03);
            x = Vector512.Create(r1[k]);
            a10 = Vector512.FusedMultiplyAdd(b0, x, a10); a11 = Vector512.FusedMultiplyAdd(b1, x, a11);
            a12 = Vector512.FusedMultiplyAdd(b2, x, a12); a13 = Vector512.FusedMultiplyAdd(b3, x, a13);
            x = Vector512.Create(r2[k]);
            a20 = Vector512.FusedMultiplyAdd(b0, x, a20); a21 = Vector512.FusedMultiplyAdd(b1, x, a21);
            a22 = Vector512.FusedMultiplyAdd(b2, x, a22); a23 = Vector512.FusedMultiplyAdd(b3, x, a23);
            x = Vector512.Create(r3[k]);
            a30 = Vector512.FusedMultiplyAdd(b0, x, a30); a31 = Vector512.FusedMultiplyAdd(b1, x, a31);
            a32 = Vector512.FusedMultiplyAdd(b2, x, a32); a33 = Vector512.FusedMultiplyAdd(b3, x, a33);
        }
        a00.Store(c0); a01.Store(c0 + 16); a02.Store(c0 + 32); a03.Store(c0 + 48);
        a10.Store(c1); a11.Store(c1 + 16); a12.Store(c1 + 32); a13.Store(c1 + 48);
        a20.Store(c2); a21.Store(c2 + 16); a22.Store(c2 + 32); a23.Store(c2 + 48);
        a30.Store(c3); a31.Store(c3 + 16); a32.Store(c3 + 32); a33.Store(c3 + 48);
    }

    private static void Block1x64(ref Job jb, int i, int j0)
    {
        int K = jb.K, J = jb.J;
        float* c = jb.C + (long)i * J + j0;
        Vector512<float> a0, a1, a2, a3;
        if (jb.Accumulate) { a0 = Vector512.Load(c); a1 = Vector512.Load(c + 16); a2 = Vector512.Load(c + 32); a3 = Vector512.Load(c + 48); }
        else a0 = a1 = a2 = a3 = Vector512<float>.Zero;
        float* r = jb.A + (long)i * K;
        float* b = jb.B + j0;
        for (int k = 0; k < K; k++, b += J)
        {
            var x = Vector512.Create(r[k]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(b), x, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(b + 16), x, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(b + 32), x, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(b + 48), x, a3);
        }
        a0.Store(c); a1.Store(c + 16); a2.Store(c + 32); a3.Store(c + 48);
    }

    /// <summary>Columns j0.. of one row of C by row-of-B axpys (TensorPrimitives), for widths the blocks do not cover.</summary>
    private static void RowTail(ref Job jb, int i, int j0)
    {
        int K = jb.K, J = jb.J, w = J - j0;
        var c = new Span<float>(jb.C + (long)i * J + j0, w);
        if (!jb.Accumulate) c.Clear();
        float* r = jb.A + (long)i * K;
        for (int k = 0; k < K; k++)
        {
            float x = r[k];
            if (x != 0) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(jb.B + (long)k * J + j0, w), x, c, c);
        }
    }
}
