using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tensors;
using Xunit;

namespace R1Sharp.Tests.Models;

/// <summary>The head-tiled attention kernels against the one-head-at-a-time path they replace, over F16 and F32 caches.</summary>
public unsafe class AttentionTests
{
    [Theory]
    // heads, KV heads' share (GQA ratio), key dim, value dim, context lengths of the tokens
    [InlineData(12, 6, 128, 128, new[] { 1, 5, 37, 300 })]    // qwen2 1.5B: a tile of 6 heads (4 + 2), position blocks with a tail
    [InlineData(32, 4, 128, 128, new[] { 3, 64, 129 })]        // llama 8B: tiles of 4
    [InlineData(16, 16, 576, 512, new[] { 1, 17, 250 })]      // deepseek2 absorbed MLA: one latent row as key and value, 2 tiles of 8
    [InlineData(40, 20, 32, 32, new[] { 2, 65, 130 })]         // tiles of 6, 7 and 7 heads
    [InlineData(14, 7, 64, 64, new[] { 2, 9, 71 })]            // a tile of 7: 4 + 2 + 1
    [InlineData(6, 3, 32, 48, new[] { 1, 8, 33 })]             // a tile of 3: 2 + 1
    [InlineData(8, 2, 16, 16, new[] { 4, 15, 16, 100 })]       // tiles of 2, smallest dims
    public void Tiled_MatchesPerHead(int heads, int ratio, int dim, int vdim, int[] lengths)
    {
        var probe = new AttentionJob { Heads = heads, GqaRatio = ratio, HeadDim = dim, ValueDim = vdim };
        if (!Attention.Tiled(probe))
        {
            Console.WriteLine($"skipped: the tiled kernels need AVX-512 here (heads {heads}, ratio {ratio}, dims {dim}/{vdim})");
            return;
        }
        // 19 tokens, their context lengths taken from lengths in turn, each pass 1 shorter
        int n = 19, kvHeads = heads / ratio, capacity = lengths.Max() + 3;
        int[] positions = Enumerable.Range(0, n).Select(t => Math.Max(0, lengths[t % lengths.Length] - 1 - t / lengths.Length)).ToArray();
        bool shared = dim == 576; // MLA: K and V are the same rows
        int kRow = kvHeads * dim + 7, vRow = kvHeads * vdim + 5; // padded rows: strides are honoured
        var rng = new Random(heads * 1000 + dim);
        float[] Fill(long count) => Enumerable.Range(0, (int)count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] q = Fill((long)n * heads * dim), k = Fill((long)n * capacity * kRow), v = shared ? k : Fill((long)n * capacity * vRow);
        using var pool = new ComputePool(2);
        // each token in a slot of its own, then slots shared by up to 10 tokens (a prefill: an F16 cache's tokens of one
        // slot go in groups that share each widened block; positions need not grow along the batch)
        foreach (int[] slots in new[] { Enumerable.Range(0, n).Reverse().ToArray(), Enumerable.Range(0, n).Select(t => t / 10).ToArray() })
        {
            // the F32 cache holds the F16 cache's values exactly: the two must give the same bits, per head and tiled
            // (the tiled kernels read an F16 cache's rows as h · 2^-112 with the queries and weights times 2^112)
            float[]? f16Result = null, f16Tiled = null;
            foreach (var type in new[] { GgmlType.F16, GgmlType.F32 })
            {
                byte[] Cache(float[] x) => type == GgmlType.F16
                    ? MemoryMarshal.AsBytes(x.Select(f => (Half)f).ToArray().AsSpan()).ToArray()
                    : MemoryMarshal.AsBytes(x.Select(f => (float)(Half)f).ToArray().AsSpan()).ToArray();
                byte[] kc = Cache(k), vc = shared ? kc : Cache(v);
                var outTiled = new float[n * heads * vdim];
                var outHeads = new float[n * heads * vdim];
                fixed (float* pq = q, pt = outTiled, ph = outHeads)
                fixed (byte* pk = kc, pv = vc)
                fixed (int* pp = positions, ps = slots)
                {
                    var tiled = new AttentionJob
                    {
                        Q = pq, QTokenStride = heads * dim, QHeadStride = dim,
                        Out = pt, OutTokenStride = heads * vdim, OutHeadStride = vdim,
                        K = pk, KSlotStride = (long)capacity * kRow, KRowStride = kRow, KHeadStride = shared ? 0 : dim,
                        V = pv, VSlotStride = (long)capacity * (shared ? kRow : vRow), VRowStride = shared ? kRow : vRow, VHeadStride = shared ? 0 : vdim,
                        Positions = pp, Slots = ps, KType = type, VType = type,
                        Heads = heads, GqaRatio = ratio, HeadDim = dim, ValueDim = vdim, Scale = 1 / MathF.Sqrt(dim),
                    };
                    var perHead = tiled;
                    perHead.Out = ph;
                    Attention.Run(pool, ref tiled, n, tiled: true);
                    Attention.Run(pool, ref perHead, n, tiled: false);
                }
                for (int i = 0; i < outTiled.Length; i++)
                {
                    Assert.True(Math.Abs(outTiled[i] - outHeads[i]) <= 1e-5f * (1 + Math.Abs(outHeads[i])),
                        $"{type} cache, slots {string.Join(",", slots)}, out[{i}] (token {i / (heads * vdim)}, head {i / vdim % heads}): tiled {outTiled[i]}, per head {outHeads[i]}");
                }
                if (f16Result is null) (f16Result, f16Tiled) = (outHeads, outTiled);
                else
                {
                    Assert.Equal(f16Result, outHeads);
                    Assert.Equal(f16Tiled, outTiled);
                }
            }
        }
    }

    /// <summary>
    /// The tiled kernels' reading of an F16 cache as h · 2^-112 cannot hold Inf or NaN halves, nor queries of 2^16 and
    /// more times 2^112: those blocks and tiles go through the exact widening, and the bits stay an F32 cache's.
    /// </summary>
    [Theory]
    [InlineData(false, true)]  // an Inf and a NaN in the value rows: the outputs that weigh them are Inf or NaN
    [InlineData(true, false)]  // an Inf in the key rows
    [InlineData(false, false)] // a query of 1e5 (times 2^112 it would overflow)
    public void F16Cache_InfNaNAndLargeQueries_GiveTheF32CachesBits(bool infKey, bool infValue)
    {
        const int heads = 12, ratio = 6, dim = 128, n = 5, capacity = 200;
        var probe = new AttentionJob { Heads = heads, GqaRatio = ratio, HeadDim = dim, ValueDim = dim };
        if (!Attention.Tiled(probe))
        {
            Console.WriteLine("skipped: the tiled kernels need AVX-512 here");
            return;
        }
        int kvHeads = heads / ratio, row = kvHeads * dim;
        int[] positions = [150, 3, 70, 199, 64];
        int[] slots = [0, 1, 2, 3, 4];
        var rng = new Random(7);
        float[] Fill(long count) => Enumerable.Range(0, (int)count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] q = Fill(n * heads * dim), k = Fill((long)n * capacity * row), v = Fill((long)n * capacity * row);
        if (infKey) k[3 * capacity * row + 100 * row + 5] = float.PositiveInfinity;
        if (infValue)
        {
            v[0 * capacity * row + 140 * row + 7] = float.NegativeInfinity;
            v[3 * capacity * row + 10 * row + dim + 3] = float.NaN;
        }
        if (!infKey && !infValue) q[2 * heads * dim + 7 * dim + 11] = 1e5f;
        using var pool = new ComputePool(2);
        float[] Run(GgmlType type)
        {
            byte[] Cache(float[] x) => type == GgmlType.F16
                ? MemoryMarshal.AsBytes(x.Select(f => (Half)f).ToArray().AsSpan()).ToArray()
                : MemoryMarshal.AsBytes(x.Select(f => (float)(Half)f).ToArray().AsSpan()).ToArray();
            byte[] kc = Cache(k), vc = Cache(v);
            var o = new float[n * heads * dim];
            fixed (float* pq = q, po = o)
            fixed (byte* pk = kc, pv = vc)
            fixed (int* pp = positions, ps = slots)
            {
                var job = new AttentionJob
                {
                    Q = pq, QTokenStride = heads * dim, QHeadStride = dim,
                    Out = po, OutTokenStride = heads * dim, OutHeadStride = dim,
                    K = pk, KSlotStride = (long)capacity * row, KRowStride = row, KHeadStride = dim,
                    V = pv, VSlotStride = (long)capacity * row, VRowStride = row, VHeadStride = dim,
                    Positions = pp, Slots = ps, KType = type, VType = type,
                    Heads = heads, GqaRatio = ratio, HeadDim = dim, ValueDim = dim, Scale = 1 / MathF.Sqrt(dim),
                };
                Attention.Run(pool, ref job, n, tiled: true);
            }
            return o;
        }
        float[] f32 = Run(GgmlType.F32), f16 = Run(GgmlType.F16);
        Assert.True(infKey || infValue ? f32.Any(x => !float.IsFinite(x)) : f32.All(float.IsFinite), "the case tests what it means to");
        Assert.Equal(f32, f16);
    }

    [Theory]
    // heads, GQA ratio, key dim, value dim (whole Q8_0 blocks), context lengths
    [InlineData(12, 6, 128, 128, new[] { 1, 5, 37, 300 })]
    [InlineData(16, 16, 576, 512, new[] { 1, 17, 250 })]
    [InlineData(4, 1, 64, 32, new[] { 2, 40 })]
    public void Q8_0Cache_GivesWhatAnF32CacheOfItsValuesGives(int heads, int ratio, int dim, int vdim, int[] lengths)
    {
        int n = 11, kvHeads = heads / ratio, capacity = lengths.Max() + 3;
        int[] positions = Enumerable.Range(0, n).Select(t => Math.Max(0, lengths[t % lengths.Length] - 1 - t / lengths.Length)).ToArray();
        int[] slots = Enumerable.Range(0, n).Select(t => t / 6).ToArray();
        bool shared = dim == 576;
        int kRow = kvHeads * dim + 32, vRow = kvHeads * vdim + 64; // padded by whole blocks
        var rng = new Random(heads * 1000 + dim);
        float[] Fill(long count) => Enumerable.Range(0, (int)count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] q = Fill((long)n * heads * dim), k = Fill((long)2 * capacity * kRow), v = shared ? k : Fill((long)2 * capacity * vRow);
        // the Q8_0 rows (ggml-cpu's quantization) and the F32 values they stand for
        byte[] Quantize(float[] x)
        {
            var b = new byte[x.Length / 32 * 34];
            fixed (float* px = x) fixed (byte* pb = b) Q8_0Kernels.QuantizeRowQ8_0(px, pb, x.Length);
            return b;
        }
        float[] Dequantize(byte[] b)
        {
            var x = new float[b.Length / 34 * 32];
            fixed (float* px = x) fixed (byte* pb = b) Q8_0Kernels.DequantizeRowQ8_0(pb, px, x.Length);
            return x;
        }
        byte[] kq = Quantize(k), vq = shared ? kq : Quantize(v);
        byte[] kf = MemoryMarshal.AsBytes(Dequantize(kq).AsSpan()).ToArray(), vf = shared ? kf : MemoryMarshal.AsBytes(Dequantize(vq).AsSpan()).ToArray();
        using var pool = new ComputePool(2);
        float[] Run(byte[] kc, byte[] vc, GgmlType type, bool tiled)
        {
            var o = new float[n * heads * vdim];
            fixed (float* pq = q, po = o)
            fixed (byte* pk = kc, pv = vc)
            fixed (int* pp = positions, ps = slots)
            {
                var job = new AttentionJob
                {
                    Q = pq, QTokenStride = heads * dim, QHeadStride = dim,
                    Out = po, OutTokenStride = heads * vdim, OutHeadStride = vdim,
                    K = pk, KSlotStride = (long)capacity * kRow, KRowStride = kRow, KHeadStride = shared ? 0 : dim,
                    V = pv, VSlotStride = (long)capacity * (shared ? kRow : vRow), VRowStride = shared ? kRow : vRow, VHeadStride = shared ? 0 : vdim,
                    Positions = pp, Slots = ps, KType = type, VType = type,
                    Heads = heads, GqaRatio = ratio, HeadDim = dim, ValueDim = vdim, Scale = 1 / MathF.Sqrt(dim),
                };
                Attention.Run(pool, ref job, n, tiled);
            }
            return o;
        }
        var probe = new AttentionJob { Heads = heads, GqaRatio = ratio, HeadDim = dim, ValueDim = vdim };
        foreach (bool tiled in Attention.Tiled(probe) ? new[] { false, true } : [false])
        {
            // dequantization is exact (d · q in F32), so the two caches must give the same bits
            Assert.Equal(Run(kf, vf, GgmlType.F32, tiled), Run(kq, vq, GgmlType.Q8_0, tiled));
        }
    }
}
