// Causal attention over a KV cache: for every (token, head), softmax(scale · q·k_p) over the positions 0..pos of
// the token's slot, then the weighted sum of v_p. Layouts are given by strides, so the same kernel runs GQA
// (llama, qwen2), MHA and the absorbed MLA form where one latent row serves as both key and value.
using System.Numerics.Tensors;
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
                float sc = TensorPrimitives.Dot(q, new ReadOnlySpan<float>(k + (long)p * j.KRowStride, j.HeadDim)) * j.Scale;
                scores[p] = sc;
                if (sc > max) max = sc;
            }
            double sum = 0;
            for (int p = 0; p < len; p++)
            {
                float e = MathF.Exp(scores[p] - max);
                scores[p] = e;
                sum += e;
            }
            float inv = (float)(1.0 / sum);

            var o = new Span<float>(j.Out + t * j.OutTokenStride + h * j.OutHeadStride, j.ValueDim);
            o.Clear();
            for (int p = 0; p < len; p++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (long)p * j.VRowStride, j.ValueDim), scores[p] * inv, o, o);
        }
    }
}
