// The dense decoder shared by llama and qwen2: embedding, N blocks of (RMSNorm → GQA attention with RoPE →
// residual, RMSNorm → SwiGLU → residual), final RMSNorm and output head. The reference for both architectures;
// each step mirrors the ggml op llama.cpp runs, so logits can be compared with it closely.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

/// <summary>What distinguishes one dense architecture from another.</summary>
public sealed record DecoderDefinition(RopeStyle Rope, bool QkvBias);

public sealed unsafe class DecoderModel : ICausalLM
{
    /// <summary>Tokens per internal pass; longer batches are split (llama.cpp's n_ubatch).</summary>
    public const int MaxChunk = 512;

    private readonly ComputePool _pool;
    private Ops.ChunkForward? _forwardChunk; // cached: a method-group delegate per call would allocate
    private readonly DecoderDefinition _def;
    private readonly WeightMatrix _embed;
    private readonly WeightMatrix _output;
    private readonly float* _outputNorm;
    private readonly Layer[] _layers;
    private readonly Rope _rope;
    private readonly WeightLoader _weights;
    private Workspace? _ws;

    private sealed class Layer
    {
        public required float* AttnNorm;
        public required WeightMatrix Q, K, V, O;
        public required float* Bq, Bk, Bv;
        public required float* FfnNorm;
        public required WeightMatrix Gate, Up, Down;
    }

    /// <summary>The model of <paramref name="file"/>, run on <paramref name="pool"/>; its weights are interleaved on <paramref name="repackPool"/> where given.</summary>
    public DecoderModel(GgufFile file, ComputePool pool, DecoderDefinition def, ComputePool? repackPool = null)
    {
        _pool = pool;
        _def = def;
        _weights = new WeightLoader(file, repackPool ?? pool);
        var embedInfo = file.GetTensor("token_embd.weight");
        if (embedInfo.Shape.Length != 2)
            throw new GgufFormatException("tensor:token_embd.weight", 0, "token_embd.weight must be 2-D");
        Config = ModelConfig.FromGguf(file, checked((int)embedInfo.Shape[1]), def.Rope);
        var c = Config;
        int qDim = c.Heads * c.HeadDim, kDim = c.KvHeads * c.HeadDim, vDim = c.KvHeads * c.ValueHeadDim;

        var w = _weights;
        _embed = w.Matrix("token_embd.weight", c.Dim, c.VocabSize, rowAccess: true);
        _output = w.Has("output.weight") ? w.Matrix("output.weight", c.Dim, c.VocabSize) : _embed;
        _outputNorm = w.Vector("output_norm.weight", c.Dim);
        float* freqFactors = w.Has("rope_freqs.weight") ? w.Vector("rope_freqs.weight", c.RopeDim / 2) : null;
        _rope = new Rope(c.RopeDim, c.RopeTheta, c.RopeStyle, freqFactors, c.Yarn);

        _layers = new Layer[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            string b = $"blk.{i}.";
            _layers[i] = new Layer
            {
                AttnNorm = w.Vector(b + "attn_norm.weight", c.Dim),
                Q = w.Matrix(b + "attn_q.weight", c.Dim, qDim),
                K = w.Matrix(b + "attn_k.weight", c.Dim, kDim),
                V = w.Matrix(b + "attn_v.weight", c.Dim, vDim),
                O = w.Matrix(b + "attn_output.weight", c.Heads * c.ValueHeadDim, c.Dim),
                Bq = def.QkvBias ? w.Vector(b + "attn_q.bias", qDim) : null,
                Bk = def.QkvBias ? w.Vector(b + "attn_k.bias", kDim) : null,
                Bv = def.QkvBias ? w.Vector(b + "attn_v.bias", vDim) : null,
                FfnNorm = w.Vector(b + "ffn_norm.weight", c.Dim),
                Gate = w.Matrix(b + "ffn_gate.weight", c.Dim, c.FfnDim),
                Up = w.Matrix(b + "ffn_up.weight", c.Dim, c.FfnDim),
                Down = w.Matrix(b + "ffn_down.weight", c.FfnDim, c.Dim),
            };
        }
    }

    public ModelConfig Config { get; }

    public IMatMulObserver? Observer { get; set; }

    /// <summary>Reports n rows of x entering weight blk.{layer}.{name}.weight to the observer, if any.</summary>
    private void Observe(int layer, string name, ReadOnlySpan<float> x, int n, int cols) =>
        Observer?.Observe($"blk.{layer}.{name}.weight", 0, 1, false, x, n, cols, cols);

    public KvCache CreateCache(int slots, int capacity, GgmlType kType = GgmlType.F32, GgmlType? vType = null)
    {
        // each KV head's row is stored on its own
        CacheRowsFit(kType, Config.HeadDim, "K", "head");
        CacheRowsFit(vType ?? kType, Config.ValueHeadDim, "V", "head");
        return new(Config.Layers, slots, capacity, Config.KvHeads * Config.HeadDim, Config.KvHeads * Config.ValueHeadDim, kType, vType);
    }

    /// <summary>Refuses a cache type whose blocks do not divide the pieces the model stores (a Q8_0 cache: whole blocks of 32).</summary>
    internal static void CacheRowsFit(GgmlType type, int dim, string what, string piece)
    {
        if (!KvCache.Fits(type, dim))
            throw new ArgumentException($"a {GgmlTypeInfo.Name(type)} {what} cache needs whole blocks of 32 values; this model's {what} {piece} rows have {dim}");
    }

    public void Forward(Batch batch, KvCache cache, Span<float> logits) => Forward(batch, cache, logits, default);

    public void Forward(Batch batch, KvCache cache, Span<float> logits, Span<float> hidden) =>
        Ops.ForwardInChunks(batch, cache, logits, hidden, Config, Config.KvHeads * Config.HeadDim, Config.KvHeads * Config.ValueHeadDim, MaxChunk, _forwardChunk ??= ForwardChunk);

    public IMtpHead? Mtp => null;

    private void ForwardChunk(Batch batch, int start, int n, KvCache cache, Span<float> logits, Span<float> hidden)
    {
        var c = Config;
        var ws = _ws ??= new Workspace(c, MaxChunk);
        int dim = c.Dim, qDim = c.Heads * c.HeadDim, kDim = c.KvHeads * c.HeadDim, vDim = c.KvHeads * c.ValueHeadDim;
        int attDim = c.Heads * c.ValueHeadDim, ffn = c.FfnDim;
        var tokens = batch.Tokens.Slice(start, n);
        var positions = batch.Positions.Slice(start, n);
        var slots = batch.Slots.Slice(start, n);

        // x: (n, dim) = token embeddings
        for (int t = 0; t < n; t++)
            Quantization.DequantizeRow(_embed.Type, RowBytes(_embed, tokens[t]), new Span<float>(ws.X + (long)t * dim, dim));

        // each token's rotation angles, the same in every layer
        for (int t = 0; t < n; t++) _rope.Angles(positions[t], ws.RopeCache.AsSpan(t * c.RopeDim, c.RopeDim));

        var x = new Span<float>(ws.X, n * dim);
        var xb = new Span<float>(ws.Xb, n * dim);
        var q = new Span<float>(ws.Q, n * qDim);
        var k = new Span<float>(ws.K, n * kDim);
        var v = new Span<float>(ws.V, n * vDim);
        var att = new Span<float>(ws.Att, n * attDim);
        var gate = new Span<float>(ws.Gate, n * ffn);
        var up = new Span<float>(ws.Up, n * ffn);

        for (int l = 0; l < c.Layers; l++)
        {
            var layer = _layers[l];

            // xb = RMSNorm(x) * attn_norm
            Ops.RmsNorm(x, xb, n, dim, layer.AttnNorm, c.NormEps);

            // q: (n, heads, headDim), k: (n, kvHeads, headDim), v: (n, kvHeads, valueHeadDim)
            if (Observer != null)
            {
                Observe(l, "attn_q", xb, n, dim);
                Observe(l, "attn_k", xb, n, dim);
                Observe(l, "attn_v", xb, n, dim);
            }
            MatMul.Compute(_pool, layer.Q, layer.K, layer.V, xb, n, q, k, v);
            if (layer.Bq != null)
            {
                Ops.AddBias(q, n, qDim, layer.Bq);
                Ops.AddBias(k, n, kDim, layer.Bk);
                Ops.AddBias(v, n, vDim, layer.Bv);
            }

            // rotate q and k by their positions, then append k and v to each token's slot of the cache
            for (int t = 0; t < n; t++)
            {
                var angles = ws.RopeCache.AsSpan(t * c.RopeDim, c.RopeDim);
                _rope.Apply(q.Slice(t * qDim, qDim), c.Heads, c.HeadDim, 0, angles);
                _rope.Apply(k.Slice(t * kDim, kDim), c.KvHeads, c.HeadDim, 0, angles);
                for (int g = 0; g < c.KvHeads; g++)
                {
                    long row = (long)g * cache.Capacity + positions[t];
                    cache.StoreK(k.Slice(t * kDim + g * c.HeadDim, c.HeadDim), cache.K(l, slots[t]), row * c.HeadDim);
                    cache.StoreV(v.Slice(t * vDim + g * c.ValueHeadDim, c.ValueHeadDim), cache.V(l, slots[t]), row * c.ValueHeadDim);
                }
            }

            // att: (n, heads, valueHeadDim) = softmax(q·Kᵀ / sqrt(headDim)) · V over positions 0..pos of the slot
            Attention(cache, l, ws, positions, slots, n);

            // x += att · Woᵀ
            Observe(l, "attn_output", att, n, attDim);
            MatMul.Compute(_pool, layer.O, att, n, xb);
            TensorPrimitives.Add(x, xb, x);

            // x += Down(silu(Gate(xb)) * Up(xb)), xb = RMSNorm(x) * ffn_norm
            Ops.RmsNorm(x, xb, n, dim, layer.FfnNorm, c.NormEps);
            if (Observer != null)
            {
                Observe(l, "ffn_gate", xb, n, dim);
                Observe(l, "ffn_up", xb, n, dim);
            }
            MatMul.Compute(_pool, layer.Gate, layer.Up, xb, n, gate, up);
            Ops.SwiGlu(_pool, gate, up);
            Observe(l, "ffn_down", gate, n, ffn);
            MatMul.Compute(_pool, layer.Down, gate, n, xb);
            TensorPrimitives.Add(x, xb, x);
        }

        Ops.FinishChunk(_pool, batch, start, n, cache, x, xb, dim, _outputNorm, c.NormEps, _output, logits, hidden);
    }

    // The cache block of a layer and slot holds each KV head's rows together, (kvHeads, Capacity, headDim): the
    // attention of one KV head then streams one contiguous run of memory. Rows of all heads position by position would
    // give a head a few hundred bytes of every row, a pattern the hardware prefetcher (which works within 4 KiB pages)
    // does not follow far.
    private static ReadOnlySpan<byte> RowBytes(in WeightMatrix w, int row) =>
        new(w.Data + row * w.RowBytes, checked((int)w.RowBytes));

    private void Attention(KvCache cache, int layer, Workspace ws, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, int n)
    {
        var c = Config;
        fixed (int* pos = positions)
        fixed (int* sl = slots)
        {
            var job = new AttentionJob
            {
                Q = ws.Q, QTokenStride = c.Heads * c.HeadDim, QHeadStride = c.HeadDim,
                Out = ws.Att, OutTokenStride = c.Heads * c.ValueHeadDim, OutHeadStride = c.ValueHeadDim,
                K = cache.K(layer, 0), KSlotStride = (long)cache.Capacity * cache.KDim, KRowStride = c.HeadDim, KHeadStride = (long)cache.Capacity * c.HeadDim,
                V = cache.V(layer, 0), VSlotStride = (long)cache.Capacity * cache.VDim, VRowStride = c.ValueHeadDim, VHeadStride = (long)cache.Capacity * c.ValueHeadDim,
                Positions = pos, Slots = sl, KType = cache.KType, VType = cache.VType,
                Heads = c.Heads, GqaRatio = c.GqaRatio, HeadDim = c.HeadDim, ValueDim = c.ValueHeadDim,
                Scale = 1.0f / MathF.Sqrt(c.HeadDim),
            };
            Models.Attention.Run(_pool, ref job, n);
        }
    }

    /// <summary>Activation buffers for one chunk, allocated once (pinned so the kernels can hold pointers).</summary>
    private sealed class Workspace
    {
        public readonly float* X, Xb, Q, K, V, Att, Gate, Up;
        public readonly float[] RopeCache;
        private readonly List<float[]> _arrays = new();

        public Workspace(ModelConfig c, int tokens)
        {
            X = Alloc(tokens * c.Dim);
            Xb = Alloc(tokens * Math.Max(c.Dim, c.Heads * c.ValueHeadDim));
            Q = Alloc(tokens * c.Heads * c.HeadDim);
            K = Alloc(tokens * c.KvHeads * c.HeadDim);
            V = Alloc(tokens * c.KvHeads * c.ValueHeadDim);
            Att = Alloc(tokens * c.Heads * c.ValueHeadDim);
            Gate = Alloc(tokens * c.FfnDim);
            Up = Alloc(tokens * c.FfnDim);
            RopeCache = new float[tokens * c.RopeDim];
        }

        private float* Alloc(int n)
        {
            var a = GC.AllocateUninitializedArray<float>(n, pinned: true);
            _arrays.Add(a);
            return (float*)Unsafe.AsPointer(ref a[0]);
        }
    }

    public void Dispose() { }
}
