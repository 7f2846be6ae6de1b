// Causal attention over a KV cache: for every (token, head), softmax(scale · q·k_p) over the positions 0..pos of
// the token's slot, then the weighted sum of v_p. Layouts are given by strides, so the same kernel runs GQA
// (llama, qwen2), MHA and the absorbed MLA form where one latent row serves as both key and value.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using R1Sharp.Kernels;

namespace R1Sharp.Models;

internal unsafe struct AttentionJob
{
    /// <summary>Query of (token t, head h) at Q + t·QTokenStride + h·QHeadStride, HeadDim values.</summary>
    public float* Q;
    public long QTokenStride;
    public int QHeadStride;
    /// <summary>Output of (t, h) at Out + t·OutTokenStride + h·OutHeadStride, ValueDim values.</summary>
    public float* Out;
    public long OutTokenStride;
    public int OutHeadStride;
    /// <summary>Key of position p of KV head g in slot s at K + s·KSlotStride + p·KRowStride + g·KHeadStride.</summary>
    public float* K;
    public long KSlotStride;
    public int KRowStride;
    public int KHeadStride;
    /// <summary>Value rows, laid out like the keys.</summary>
    public float* V;
    public long VSlotStride;
    public int VRowStride;
    public int VHeadStride;
    public int* Positions;
    public int* Slots;
    public int Heads;
    /// <summary>Query heads per KV head.</summary>
    public int GqaRatio;
    public int HeadDim;
    public int ValueDim;
    public float Scale;
}

internal static unsafe class Attention
{
    public static void Run(ComputePool pool, ref AttentionJob job, int nTokens)
    {
        fixed (AttentionJob* j = &job) pool.Run(nTokens * job.Heads, &AttendHeads, j);
    }

    [ThreadStatic] private static float[]? t_scores;

    /// <summary>One (token, head) pair per work item; softmax as ggml: max subtracted, sum in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendHeads(int start, int end, void* ctx)
    {
        ref AttentionJob j = ref *(AttentionJob*)ctx;
        for (int w = start; w < end; w++)
        {
            int t = w / j.Heads, h = w % j.Heads, g = h / j.GqaRatio;
            int pos = j.Positions[t], slot = j.Slots[t];
            int len = pos + 1;
            var scores = t_scores is { } s && s.Length >= len ? s : (t_scores = new float[Math.Max(len, 1024)]);
            var q = new ReadOnlySpan<float>(j.Q + t * j.QTokenStride + h * j.QHeadStride, j.HeadDim);
            float* k = j.K + slot * j.KSlotStride + g * j.KHeadStride;
            float* v = j.V + slot * j.VSlotStride + g * j.VHeadStride;

            float max = float.NegativeInfinity;
            for (int p = 0; p < len; p++)
            {
                float sc = Dot(q, k + (long)p * j.KRowStride) * j.Scale;
                scores[p] = sc;
                if (sc > max) max = sc;
            }
            var sp = scores.AsSpan(0, len);
            TensorPrimitives.Subtract(sp, max, sp);
            TensorPrimitives.Exp(sp, sp);
            double sum = 0;
            foreach (float e in sp) sum += e;
            TensorPrimitives.Multiply(sp, (float)(1.0 / sum), sp);

            var o = new Span<float>(j.Out + t * j.OutTokenStride + h * j.OutHeadStride, j.ValueDim);
            WeightedSum(sp, v, j.VRowStride, o);
        }
    }

    /// <summary>q·k over q.Length values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(ReadOnlySpan<float> q, float* k)
    {
        if (!Vector512.IsHardwareAccelerated || q.Length % 32 != 0) return TensorPrimitives.Dot(q, new ReadOnlySpan<float>(k, q.Length));
        fixed (float* pq = q)
        {
            Vector512<float> a0 = default, a1 = default;
            for (int d = 0; d < q.Length; d += 32)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(pq + d), Vector512.Load(k + d), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(pq + d + 16), Vector512.Load(k + d + 16), a1);
            }
            return Vector512.Sum(a0 + a1);
        }
    }

    /// <summary>o = Σ_p w[p] · v_p, v_p at v + p·stride; 4 positions per pass over o.</summary>
    private static void WeightedSum(ReadOnlySpan<float> w, float* v, int stride, Span<float> o)
    {
        o.Clear();
        int len = w.Length, dim = o.Length;
        if (!Vector512.IsHardwareAccelerated || dim % 16 != 0)
        {
            for (int p = 0; p < len; p++) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (long)p * stride, dim), w[p], o, o);
            return;
        }
        fixed (float* po = o)
        {
            int p = 0;
            for (; p + 4 <= len; p += 4)
            {
                float* v0 = v + (long)p * stride, v1 = v0 + stride, v2 = v1 + stride, v3 = v2 + stride;
                Vector512<float> w0 = Vector512.Create(w[p]), w1 = Vector512.Create(w[p + 1]), w2 = Vector512.Create(w[p + 2]), w3 = Vector512.Create(w[p + 3]);
                for (int d = 0; d < dim; d += 16)
                {
                    Vector512<float> acc = Vector512.FusedMultiplyAdd(Vector512.Load(v0 + d), w0, Vector512.Load(po + d));
                    acc = Vector512.FusedMultiplyAdd(Vector512.Load(v1 + d), w1, acc);
                    acc = Vector512.FusedMultiplyAdd(Vector512.Load(v2 + d), w2, acc);
                    Vector512.FusedMultiplyAdd(Vector512.Load(v3 + d), w3, acc).Store(po + d);
                }
            }
            for (; p < len; p++)
            {
                float* vp = v + (long)p * stride;
                var wp = Vector512.Create(w[p]);
                for (int d = 0; d < dim; d += 16) Vector512.FusedMultiplyAdd(Vector512.Load(vp + d), wp, Vector512.Load(po + d)).Store(po + d);
            }
        }
    }
}
