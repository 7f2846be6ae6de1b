// Element-wise steps of the forward pass shared by the architectures, each mirroring the ggml op llama.cpp runs.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using R1Sharp.Engine;
using R1Sharp.Kernels;

namespace R1Sharp.Models;

internal static unsafe class Ops
{
    /// <summary>out = x / sqrt(mean(x²) + eps) * w per row of <paramref name="dim"/>, the sum kept in double as ggml does.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, Span<float> output, int n, int dim, float* w, float eps, int stride = -1, int outStride = -1)
    {
        if (stride < 0) stride = dim;
        if (outStride < 0) outStride = dim;
        var weight = new ReadOnlySpan<float>(w, dim);
        for (int t = 0; t < n; t++)
        {
            var row = x.Slice(t * stride, dim);
            float scale = 1.0f / MathF.Sqrt((float)(SumOfSquares(row) / dim) + eps);
            var o = output.Slice(t * outStride, dim);
            TensorPrimitives.Multiply(row, scale, o);
            TensorPrimitives.Multiply(o, weight, o);
        }
    }

    /// <summary>Σ x², each square rounded to float and the sum kept in double, as ggml's rms_norm computes it.</summary>
    private static double SumOfSquares(ReadOnlySpan<float> x)
    {
        double sum = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            fixed (float* p = x)
            {
                Vector256<double> a0 = default, a1 = default;
                for (; i + Vector256<float>.Count <= x.Length; i += Vector256<float>.Count)
                {
                    Vector256<float> v = Vector256.Load(p + i);
                    Vector256<float> sq = v * v;
                    a0 += Vector256.WidenLower(sq);
                    a1 += Vector256.WidenUpper(sq);
                }
                sum = Vector256.Sum(a0 + a1);
            }
        }
        for (; i < x.Length; i++) sum += x[i] * x[i];
        return sum;
    }

    public static void AddBias(Span<float> y, int n, int width, float* bias)
    {
        var b = new ReadOnlySpan<float>(bias, width);
        for (int t = 0; t < n; t++) TensorPrimitives.Add(y.Slice(t * width, width), b, y.Slice(t * width, width));
    }

    /// <summary>gate = silu(gate) * up, silu(g) = g · sigmoid(g), vectorized in stack-sized pieces.</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        Span<float> sig = stackalloc float[SwiGluPiece];
        for (int i = 0; i < gate.Length; i += SwiGluPiece)
        {
            int m = Math.Min(SwiGluPiece, gate.Length - i);
            var g = gate.Slice(i, m);
            var s = sig[..m];
            TensorPrimitives.Sigmoid(g, s);
            TensorPrimitives.Multiply(g, s, s);
            TensorPrimitives.Multiply(s, up.Slice(i, m), g);
        }
    }

    private const int SwiGluPiece = 512;

    /// <summary><see cref="SwiGlu(Span{float}, ReadOnlySpan{float})"/> split over the pool's threads.</summary>
    public static void SwiGlu(ComputePool pool, Span<float> gate, ReadOnlySpan<float> up)
    {
        if (gate.Length < 4 * SwiGluPiece || pool.Threads == 1)
        {
            SwiGlu(gate, up);
            return;
        }
        fixed (float* g = gate, u = up)
        {
            var job = new SwiGluJob { Gate = g, Up = u, Length = gate.Length };
            pool.Run((gate.Length + SwiGluPiece - 1) / SwiGluPiece, &SwiGluPieces, &job);
        }
    }

    private struct SwiGluJob
    {
        public float* Gate, Up;
        public int Length;
    }

    private static void SwiGluPieces(int start, int end, void* ctx)
    {
        var j = (SwiGluJob*)ctx;
        int from = start * SwiGluPiece, to = Math.Min(j->Length, end * SwiGluPiece);
        SwiGlu(new Span<float>(j->Gate + from, to - from), new ReadOnlySpan<float>(j->Up + from, to - from));
    }

    /// <summary>y[t] = Wᵀ·x[t]: y[t, c] = Σ_r x[t, r]·W[r, c] for a weight of R rows of C values (rows dequantized once).</summary>
    public static void MatMulTransposed(in R1Sharp.Kernels.WeightMatrix w, ReadOnlySpan<float> x, int n, Span<float> y)
    {
        int rows = w.Rows, cols = w.Cols;
        y[..(n * cols)].Clear();
        var row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            w.DequantizeRow(r, row);
            for (int t = 0; t < n; t++)
            {
                var dst = y.Slice(t * cols, cols);
                TensorPrimitives.MultiplyAdd(row, x[t * rows + r], dst, dst);
            }
        }
    }

    /// <summary>
    /// One pass over tokens [start, start + n) of a batch, writing the logits rows they asked for, and where
    /// <paramref name="hidden"/> is not empty the final hidden state of each of the n tokens (n × dim).
    /// </summary>
    public delegate void ChunkForward(Batch batch, int start, int n, KvCache cache, Span<float> logits, Span<float> hidden);

    /// <summary>
    /// Validates a batch and runs it in chunks of at most <paramref name="maxChunk"/> tokens, each chunk's logits rows
    /// following the previous ones in <paramref name="logits"/> (and its hidden rows in <paramref name="hidden"/>,
    /// when not empty: Count × Dim).
    /// </summary>
    public static void ForwardInChunks(Batch batch, KvCache cache, Span<float> logits, Span<float> hidden, ModelConfig config,
        int kDim, int vDim, int maxChunk, ChunkForward forward)
    {
        if (logits.Length < (long)batch.LogitCount * config.VocabSize)
            throw new ArgumentException($"logits needs {batch.LogitCount} x {config.VocabSize} values", nameof(logits));
        if (!hidden.IsEmpty && hidden.Length < (long)batch.Count * config.Dim)
            throw new ArgumentException($"hidden needs {batch.Count} x {config.Dim} values", nameof(hidden));
        ValidateBatch(batch, cache, config.Layers, config, kDim, vDim);
        int logitRow = 0;
        for (int start = 0; start < batch.Count; start += maxChunk)
        {
            int n = Math.Min(maxChunk, batch.Count - start);
            int rows = 0;
            foreach (bool w in batch.WantsLogits.Slice(start, n)) if (w) rows++;
            forward(batch, start, n, cache, logits.Slice(logitRow * config.VocabSize, rows * config.VocabSize),
                hidden.IsEmpty ? default : hidden.Slice(start * config.Dim, n * config.Dim));
            logitRow += rows;
        }
    }

    /// <summary>Checks a batch against a cache: ids in the vocabulary, slots that exist, positions without gaps inside the context.</summary>
    public static void ValidateBatch(Batch batch, KvCache cache, int layers, ModelConfig config, int kDim, int vDim)
    {
        if (cache.Layers != layers || cache.KDim != kDim || cache.VDim != vDim)
            throw new ArgumentException("the KV cache was made for another model", nameof(cache));
        Span<int> next = stackalloc int[cache.Slots];
        cache.Lengths.CopyTo(next);
        for (int i = 0; i < batch.Count; i++)
        {
            int token = batch.Tokens[i], pos = batch.Positions[i], slot = batch.Slots[i];
            if ((uint)token >= (uint)config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(batch), $"token id {token} is outside the vocabulary (0..{config.VocabSize - 1})");
            if ((uint)slot >= (uint)cache.Slots)
                throw new ArgumentOutOfRangeException(nameof(batch), $"slot {slot} does not exist (the cache has {cache.Slots})");
            if (pos < 0 || pos > next[slot])
                throw new ArgumentOutOfRangeException(nameof(batch), $"position {pos} of slot {slot} would leave a gap (the slot holds {next[slot]})");
            if (pos >= cache.Capacity)
                throw new ArgumentOutOfRangeException(nameof(batch), $"position {pos} is past the context size {cache.Capacity}");
            next[slot] = pos + 1;
        }
    }

    /// <summary>
    /// Ends a chunk of a forward pass: records each slot's new length in the cache, then computes logits only for the
    /// rows that will be sampled (gathered to the front of <paramref name="scratch"/>, final norm, output head). Where
    /// <paramref name="hidden"/> is not empty, every row's final norm goes there first (what an MTP head reads), and
    /// the sampled rows are gathered from it: the same values either way.
    /// </summary>
    public static void FinishChunk(ComputePool pool, Batch batch, int start, int n, KvCache cache, ReadOnlySpan<float> x,
        Span<float> scratch, int dim, float* outputNorm, float eps, in WeightMatrix output, Span<float> logits, Span<float> hidden)
    {
        var positions = batch.Positions.Slice(start, n);
        var slots = batch.Slots.Slice(start, n);
        for (int t = 0; t < n; t++)
            cache.Lengths[slots[t]] = Math.Max(cache.Lengths[slots[t]], positions[t] + 1);
        Head(pool, batch.WantsLogits.Slice(start, n), x, scratch, dim, outputNorm, eps, output, logits, hidden);
    }

    /// <summary>
    /// The output head of the rows of <paramref name="x"/> that <paramref name="wants"/> marks: RMSNorm with
    /// <paramref name="norm"/>, then <paramref name="output"/>; with <paramref name="hidden"/> not empty, the norm of
    /// every row is kept there.
    /// </summary>
    public static void Head(ComputePool pool, ReadOnlySpan<bool> wants, ReadOnlySpan<float> x, Span<float> scratch, int dim,
        float* norm, float eps, in WeightMatrix output, Span<float> logits, Span<float> hidden)
    {
        int n = wants.Length;
        if (!hidden.IsEmpty) RmsNorm(x, hidden, n, dim, norm, eps);
        int rows = 0;
        for (int t = 0; t < n; t++)
        {
            if (!wants[t]) continue;
            (hidden.IsEmpty ? x : hidden).Slice(t * dim, dim).CopyTo(scratch.Slice(rows * dim, dim));
            rows++;
        }
        if (rows == 0) return;
        var sel = scratch.Slice(0, rows * dim);
        if (hidden.IsEmpty) RmsNorm(sel, sel, rows, dim, norm, eps);
        MatMul.Compute(pool, output, sel, rows, logits.Slice(0, rows * output.Rows));
    }
}
