// deepseek2 (DeepSeek-V2, V2-Lite, V3, R1): multi-head latent attention, a mixture of experts after the leading
// dense layers, YaRN RoPE. The absorbed MLA form caches only the normalized latent c_kv and the shared RoPE key
// (KvLoraRank + RopeDim values per token and layer); the naive form rebuilds per-head keys and values and is the
// test oracle for it. Both GGUF layouts are read: split attn_k_b/attn_v_b, and the older single attn_kv_b.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

public sealed unsafe class DeepSeek2Model : ICausalLM
{
    private readonly ComputePool _pool;
    private Ops.ChunkForward? _forwardChunk; // cached: a method-group delegate per call would allocate
    private readonly WeightLoader _w;
    private readonly WeightMatrix _embed, _output;
    private readonly float* _outputNorm;
    private readonly Layer[] _layers;
    private readonly Rope _rope;
    private readonly float _kqScale;
    private readonly int _maxChunk;
    /// <summary>The weights are read from a file mapping (not a copy in memory): chosen experts are asked for ahead.</summary>
    private readonly bool _prefetchExperts;
    private Workspace? _ws;

    private sealed class Layer
    {
        public float* AttnNorm;
        public WeightMatrix Wq, Wqa, Wqb; // Wq without q_lora; Wqa → norm → Wqb with it
        public float* QaNorm;
        public WeightMatrix Wkva;          // x → [c_kv ; k_pe]
        public float* KvaNorm;
        public WeightMatrix[] Uk = [];     // per head: latent ↔ k_nope
        public bool UkRowsAreLatent;       // split layout: Uk[h] is (kv_lora × nope); legacy: (nope × kv_lora)
        public WeightMatrix[] Uv = [];     // per head: (v × kv_lora)
        public WeightMatrix Wo;
        public float* FfnNorm;
        public WeightMatrix Gate, Up, Down;                  // dense layers and the shared expert(s)
        public bool IsMoe, HasShared;
        public WeightMatrix Router;
        public float* RouterBias;                            // exp_probs_b: biases selection only
        public WeightMatrix[] ExpGate = [], ExpUp = [], ExpDown = [];
    }

    /// <param name="naive">Run MLA in its naive form (per-head K and V in the cache) instead of the absorbed one.</param>
    /// <param name="repackPool">Where the weights are interleaved, if not on <paramref name="pool"/>.</param>
    public DeepSeek2Model(GgufFile file, ComputePool pool, bool naive = false, ComputePool? repackPool = null)
    {
        _pool = pool;
        Naive = naive;
        _w = new WeightLoader(file, repackPool ?? pool);
        _prefetchExperts = !file.InMemory;
        var embedInfo = file.GetTensor("token_embd.weight");
        if (embedInfo.Shape.Length != 2)
            throw new GgufFormatException("tensor:token_embd.weight", 0, "token_embd.weight must be 2-D");
        Config = ModelConfig.FromGguf(file, checked((int)embedInfo.Shape[1]), RopeStyle.Normal);
        var c = Config;
        var mla = c.Mla ?? throw new InvalidDataException("deepseek2: attention.kv_lora_rank is missing");
        if (c.Moe is null && c.Layers > 0 && LeadingDense(c) < c.Layers)
            throw new InvalidDataException("deepseek2: expert_count is missing");
        int H = c.Heads, rope = mla.RopeDim, qk = mla.QkHeadDim;

        _embed = _w.Matrix("token_embd.weight", c.Dim, c.VocabSize, rowAccess: true);
        _output = _w.Has("output.weight") ? _w.Matrix("output.weight", c.Dim, c.VocabSize) : _embed;
        _outputNorm = _w.Vector("output_norm.weight", c.Dim);
        _rope = new Rope(rope, c.RopeTheta, RopeStyle.Normal, null, c.Yarn, yarnScaleInSoftmax: true);
        float mscale = c.Yarn?.MScale ?? 1.0f;
        _kqScale = mscale * mscale / MathF.Sqrt(qk);
        // the absorbed query block is (tokens × heads × (kv_lora + rope)); keep it near 64 MB
        _maxChunk = Math.Clamp((64 << 20) / (H * mla.CacheDim * sizeof(float)), 16, 512);

        _layers = new Layer[c.Layers];
        for (int i = 0; i < c.Layers; i++) _layers[i] = LoadLayer(i);
        // the multi-token-prediction layers follow the main ones: a full block plus the nextn tensors that feed it
        if (c.MtpLayers > 0)
        {
            int i = c.Layers;
            string b = $"blk.{i}.nextn.";
            var L = LoadLayer(i);
            var mtp = new MtpLayer
            {
                Block = L,
                EhProj = _w.Matrix(b + "eh_proj.weight", 2 * c.Dim, c.Dim),
                ENorm = _w.Vector(b + "enorm.weight", c.Dim),
                HNorm = _w.Vector(b + "hnorm.weight", c.Dim),
                HeadNorm = _w.Vector(b + "shared_head_norm.weight", c.Dim),
                Embed = _w.Has(b + "embed_tokens.weight") ? _w.Matrix(b + "embed_tokens.weight", c.Dim, c.VocabSize, rowAccess: true) : _embed,
                Head = _w.Has(b + "shared_head_head.weight") ? _w.Matrix(b + "shared_head_head.weight", c.Dim, c.VocabSize) : _output,
            };
            Mtp = new MtpHead(this, mtp);
        }
    }

    private Layer LoadLayer(int i)
    {
        var c = Config;
        var mla = c.Mla!;
        int H = c.Heads, nope = mla.NopeDim, rope = mla.RopeDim, qk = mla.QkHeadDim, kvLora = mla.KvLoraRank, vDim = mla.VDim;
        string b = $"blk.{i}.";
        var L = new Layer
        {
            AttnNorm = _w.Vector(b + "attn_norm.weight", c.Dim),
            Wkva = _w.Matrix(b + "attn_kv_a_mqa.weight", c.Dim, kvLora + rope),
            KvaNorm = _w.Vector(b + "attn_kv_a_norm.weight", kvLora),
            Wo = _w.Matrix(b + "attn_output.weight", H * vDim, c.Dim),
            FfnNorm = _w.Vector(b + "ffn_norm.weight", c.Dim),
        };
        // queries: compressed through q_lora when the file has it (V2, V3), directly otherwise (V2-Lite)
        if (_w.Has(b + "attn_q_a.weight"))
        {
            if (mla.QLoraRank <= 0) throw new InvalidDataException("deepseek2: attn_q_a is present but attention.q_lora_rank is not");
            L.Wqa = _w.Matrix(b + "attn_q_a.weight", c.Dim, mla.QLoraRank);
            L.QaNorm = _w.Vector(b + "attn_q_a_norm.weight", mla.QLoraRank);
            L.Wqb = _w.Matrix(b + "attn_q_b.weight", mla.QLoraRank, H * qk);
        }
        else
        {
            L.Wq = _w.Matrix(b + "attn_q.weight", c.Dim, H * qk);
        }
        L.Uk = new WeightMatrix[H];
        L.Uv = new WeightMatrix[H];
        if (_w.Has(b + "attn_k_b.weight"))
        {
            L.UkRowsAreLatent = true;
            for (int h = 0; h < H; h++)
            {
                L.Uk[h] = _w.Slice(b + "attn_k_b.weight", nope, kvLora, H, h);
                L.Uv[h] = _w.Slice(b + "attn_v_b.weight", kvLora, vDim, H, h);
            }
        }
        else
        {
            // sliced per head at any row and read transposed row by row (Ops.MatMulTransposed): the file's layout
            var kvb = _w.Matrix(b + "attn_kv_b.weight", kvLora, H * (nope + vDim), rowAccess: true);
            for (int h = 0; h < H; h++)
            {
                L.Uk[h] = kvb.Slice(h * (nope + vDim), nope);
                L.Uv[h] = kvb.Slice(h * (nope + vDim) + nope, vDim);
            }
        }
        if (i < LeadingDense(c))
        {
            L.Gate = _w.Matrix(b + "ffn_gate.weight", c.Dim, c.FfnDim);
            L.Up = _w.Matrix(b + "ffn_up.weight", c.Dim, c.FfnDim);
            L.Down = _w.Matrix(b + "ffn_down.weight", c.FfnDim, c.Dim);
        }
        else
        {
            var moe = c.Moe!;
            int E = moe.Experts, eff = moe.ExpertFfnDim;
            L.IsMoe = true;
            L.Router = _w.Matrix(b + "ffn_gate_inp.weight", c.Dim, E);
            L.RouterBias = _w.Has(b + "exp_probs_b.bias") ? _w.Vector(b + "exp_probs_b.bias", E) : null;
            L.ExpGate = new WeightMatrix[E];
            L.ExpUp = new WeightMatrix[E];
            L.ExpDown = new WeightMatrix[E];
            for (int e = 0; e < E; e++)
            {
                L.ExpGate[e] = _w.Slice(b + "ffn_gate_exps.weight", c.Dim, eff, E, e);
                L.ExpUp[e] = _w.Slice(b + "ffn_up_exps.weight", c.Dim, eff, E, e);
                L.ExpDown[e] = _w.Slice(b + "ffn_down_exps.weight", eff, c.Dim, E, e);
            }
            if (moe.SharedExperts > 0)
            {
                int sh = moe.SharedExperts * eff;
                L.HasShared = true;
                L.Gate = _w.Matrix(b + "ffn_gate_shexp.weight", c.Dim, sh);
                L.Up = _w.Matrix(b + "ffn_up_shexp.weight", c.Dim, sh);
                L.Down = _w.Matrix(b + "ffn_down_shexp.weight", sh, c.Dim);
            }
        }
        return L;
    }

    public ModelConfig Config { get; }

    public IMatMulObserver? Observer { get; set; }

    /// <summary>
    /// Reports rows of x entering weight blk.{layer}.{name}.weight to the observer, if any: the inputs llama.cpp's graph
    /// multiplies (attn_k_b: each head's q_nope; attn_v_b: each head's latent attention output; attn_kv_b: the
    /// normalized latent), whichever form of the attention runs here.
    /// </summary>
    private void Observe(int layer, string name, ReadOnlySpan<float> x, int rows, int cols, int rowStride = 0, int slice = 0, int slices = 1, bool expert = false) =>
        Observer?.Observe($"blk.{layer}.{name}.weight", slice, slices, expert, x, rows, cols, rowStride == 0 ? cols : rowStride);

    /// <summary>True when running the naive MLA form (the oracle); false for the absorbed form.</summary>
    public bool Naive { get; }

    public IMtpHead? Mtp { get; }

    private static int LeadingDense(ModelConfig c) => c.Moe?.LeadingDenseLayers ?? c.Layers;

    private int CacheKDim => Naive ? Config.Heads * Config.Mla!.QkHeadDim : Config.Mla!.CacheDim;
    private int CacheVDim => Naive ? Config.Heads * Config.Mla!.VDim : 0;

    /// <summary>
    /// The absorbed form caches one latent row per position that serves as key and value: it takes
    /// <paramref name="kType"/> and ignores <paramref name="vType"/>.
    /// </summary>
    public KvCache CreateCache(int slots, int capacity, GgmlType kType = GgmlType.F32, GgmlType? vType = null)
    {
        var mla = Config.Mla!;
        if (Naive)
        {
            DecoderModel.CacheRowsFit(kType, mla.NopeDim, "K", "no-position");
            DecoderModel.CacheRowsFit(kType, mla.RopeDim, "K", "rotary");
            DecoderModel.CacheRowsFit(vType ?? kType, mla.VDim, "V", "head");
            return new(Config.Layers, slots, capacity, CacheKDim, CacheVDim, kType, vType);
        }
        DecoderModel.CacheRowsFit(kType, mla.KvLoraRank, "K", "latent");
        DecoderModel.CacheRowsFit(kType, mla.RopeDim, "K", "rotary");
        return new(Config.Layers, slots, capacity, CacheKDim, CacheVDim, kType, kType);
    }

    public void Forward(Batch batch, KvCache cache, Span<float> logits) => Forward(batch, cache, logits, default);

    public void Forward(Batch batch, KvCache cache, Span<float> logits, Span<float> hidden) =>
        Ops.ForwardInChunks(batch, cache, logits, hidden, Config, CacheKDim, CacheVDim, _maxChunk, _forwardChunk ??= ForwardChunk);

    private void ForwardChunk(Batch batch, int start, int n, KvCache cache, Span<float> logits, Span<float> hidden)
    {
        var c = Config;
        var ws = _ws ??= new Workspace(c, _maxChunk);
        int dim = c.Dim;
        var tokens = batch.Tokens.Slice(start, n);

        // x: (n, dim) = token embeddings
        for (int t = 0; t < n; t++) Embed(_embed, tokens[t], ws.Span(ws.X, t * dim, dim));
        Angles(ws, batch.Positions.Slice(start, n));
        for (int l = 0; l < c.Layers; l++)
            Block(_layers[l], l, cache, ws, batch.Positions.Slice(start, n), batch.Slots.Slice(start, n), n);
        Ops.FinishChunk(_pool, batch, start, n, cache, ws.Span(ws.X, 0, n * dim), ws.Span(ws.Xb, 0, n * dim), dim, _outputNorm, c.NormEps, _output, logits, hidden);
    }

    private static void Embed(in WeightMatrix embed, int token, Span<float> x) =>
        Quantization.DequantizeRow(embed.Type, new ReadOnlySpan<byte>(embed.Row(token), checked((int)embed.RowBytes)), x);

    /// <summary>Each token's rotation angles, the same in every layer.</summary>
    private void Angles(Workspace ws, ReadOnlySpan<int> positions)
    {
        int rope = Config.Mla!.RopeDim;
        for (int t = 0; t < positions.Length; t++) _rope.Angles(positions[t], ws.RopeCache.AsSpan(t * rope, rope));
    }

    /// <summary>
    /// One transformer block on the n rows of X: attention (MLA) with residual, then the dense FFN or the experts with
    /// residual; its K and V go to layer <paramref name="l"/> of <paramref name="cache"/>.
    /// </summary>
    private void Block(Layer L, int l, KvCache cache, Workspace ws, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, int n)
    {
        var c = Config;
        var mla = c.Mla!;
        int dim = c.Dim, H = c.Heads, nope = mla.NopeDim, rope = mla.RopeDim, qk = mla.QkHeadDim;
        int kvLora = mla.KvLoraRank, vDim = mla.VDim, kvaDim = kvLora + rope;
        var x = ws.Span(ws.X, 0, n * dim);
        var xb = ws.Span(ws.Xb, 0, n * dim);
        var q = ws.Span(ws.Q, 0, n * H * qk);
        var kva = ws.Span(ws.Kva, 0, n * kvaDim);
        var ckv = ws.Span(ws.C, 0, n * kvLora);

        Ops.RmsNorm(x, xb, n, dim, L.AttnNorm, c.NormEps);

        // q: (n, H, nope + rope); kva: (n, kv_lora + rope) = [c_kv ; k_pe], from one conversion of xb
        if (L.Wqa.Data != null)
        {
            var qa = ws.Span(ws.Qa, 0, n * mla.QLoraRank);
            Observe(l, "attn_q_a", xb, n, dim);
            Observe(l, "attn_kv_a_mqa", xb, n, dim);
            MatMul.Compute(_pool, L.Wqa, L.Wkva, xb, n, qa, kva);
            Ops.RmsNorm(qa, qa, n, mla.QLoraRank, L.QaNorm, c.NormEps);
            Observe(l, "attn_q_b", qa, n, mla.QLoraRank);
            MatMul.Compute(_pool, L.Wqb, qa, n, q);
        }
        else
        {
            Observe(l, "attn_q", xb, n, dim);
            Observe(l, "attn_kv_a_mqa", xb, n, dim);
            MatMul.Compute(_pool, L.Wq, L.Wkva, xb, n, q, kva);
        }

        // c_kv normalized, k_pe and q_pe rotated
        Ops.RmsNorm(kva, ckv, n, kvLora, L.KvaNorm, c.NormEps, stride: kvaDim, outStride: kvLora);
        for (int t = 0; t < n; t++)
        {
            var angles = ws.RopeCache.AsSpan(t * rope, rope);
            _rope.Apply(q.Slice(t * H * qk, H * qk), H, qk, nope, angles);
            _rope.Apply(kva.Slice(t * kvaDim, kvaDim), 1, kvaDim, kvLora, angles);
        }

        if (Observer != null)
        {
            if (!L.UkRowsAreLatent) Observe(l, "attn_kv_b", ckv, n, kvLora);
            else
            {
                for (int h = 0; h < H; h++) Observe(l, "attn_k_b", q[(h * qk)..], n, nope, H * qk, h, H);
            }
        }
        if (Naive) NaiveAttention(L, l, cache, ws, positions, slots, n);
        else AbsorbedAttention(L, l, cache, ws, positions, slots, n);

        // x += att · Woᵀ
        var att = ws.Span(ws.Att, 0, n * H * vDim);
        Observe(l, "attn_output", att, n, H * vDim);
        MatMul.Compute(_pool, L.Wo, att, n, xb);
        TensorPrimitives.Add(x, xb, x);

        Ops.RmsNorm(x, xb, n, dim, L.FfnNorm, c.NormEps);
        var ffnOut = ws.Span(ws.FfnOut, 0, n * dim);
        if (L.IsMoe) MixtureOfExperts(L, l, ws, n);
        else SwiGluFfn(L.Gate, L.Up, L.Down, l, ws, xb, n, ffnOut);
        TensorPrimitives.Add(x, ffnOut, x);
    }

    /// <summary>The nextn tensors of the first MTP layer, around its transformer block.</summary>
    private sealed class MtpLayer
    {
        public required Layer Block;
        /// <summary>(2·dim → dim): mixes [enorm(embedding of token i+1) ; hnorm(hidden state at i)].</summary>
        public required WeightMatrix EhProj;
        public required float* ENorm, HNorm, HeadNorm;
        /// <summary>The layer's own embedding and output head where the file has them, else the main model's.</summary>
        public required WeightMatrix Embed, Head;
    }

    /// <summary>
    /// DeepSeek-V3's MTP module over this model's weights and workspace (so a main pass and an MTP pass never overlap:
    /// the engine runs one at a time): h' = eh_proj([enorm(emb(t_{i+1})) ; hnorm(h_i)]), the block on h', then
    /// shared_head_norm and the output head give the logits of token i+2. Only the first nextn layer is run.
    /// </summary>
    private sealed class MtpHead(DeepSeek2Model m, MtpLayer layer) : IMtpHead
    {
        public int Dim => m.Config.Dim;

        public KvCache CreateCache(int slots, int capacity, GgmlType type = GgmlType.F32) =>
            new(1, slots, capacity, m.CacheKDim, m.CacheVDim, type);

        public void Forward(Batch batch, ReadOnlySpan<float> hidden, KvCache cache, Span<float> logits, Span<float> hiddenOut)
        {
            var c = m.Config;
            int dim = c.Dim;
            if (hidden.Length < (long)batch.Count * dim || hiddenOut.Length < (long)batch.Count * dim)
                throw new ArgumentException($"hidden and hiddenOut need {batch.Count} x {dim} values");
            if (logits.Length < (long)batch.LogitCount * c.VocabSize)
                throw new ArgumentException($"logits needs {batch.LogitCount} x {c.VocabSize} values", nameof(logits));
            Ops.ValidateBatch(batch, cache, 1, c, m.CacheKDim, m.CacheVDim);
            var ws = m._ws ??= new Workspace(c, m._maxChunk);
            int logitRow = 0;
            for (int start = 0; start < batch.Count; start += m._maxChunk)
            {
                int n = Math.Min(m._maxChunk, batch.Count - start);
                var tokens = batch.Tokens.Slice(start, n);
                var positions = batch.Positions.Slice(start, n);
                var slots = batch.Slots.Slice(start, n);

                // mixed: (n, 2·dim) = [enorm(embedding) ; hnorm(hidden)], then x: (n, dim) = eh_proj · mixed
                var mixed = ws.Span(ws.Mixed, 0, n * 2 * dim);
                var row = ws.Span(ws.Xb, 0, dim);
                for (int t = 0; t < n; t++)
                {
                    Embed(layer.Embed, tokens[t], row);
                    Ops.RmsNorm(row, mixed.Slice(t * 2 * dim, dim), 1, dim, layer.ENorm, c.NormEps);
                    Ops.RmsNorm(hidden.Slice((start + t) * dim, dim), mixed.Slice(t * 2 * dim + dim, dim), 1, dim, layer.HNorm, c.NormEps);
                }
                var x = ws.Span(ws.X, 0, n * dim);
                MatMul.Compute(m._pool, layer.EhProj, mixed, n, x);

                m.Angles(ws, positions);
                m.Block(layer.Block, 0, cache, ws, positions, slots, n);
                for (int t = 0; t < n; t++)
                    cache.Lengths[slots[t]] = Math.Max(cache.Lengths[slots[t]], positions[t] + 1);
                x.CopyTo(hiddenOut.Slice(start * dim, n * dim));

                var wants = batch.WantsLogits.Slice(start, n);
                int rows = 0;
                foreach (bool w in wants) if (w) rows++;
                Ops.Head(m._pool, wants, x, ws.Span(ws.Xb, 0, n * dim), dim, layer.HeadNorm, c.NormEps, layer.Head,
                    logits.Slice(logitRow * c.VocabSize, rows * c.VocabSize), default);
                logitRow += rows;
            }
        }
    }

    /// <summary>
    /// Absorbed MLA: cache [c_kv ; k_pe]; per head q̃ = W_UKᵀ·q_nope so that score = [q̃ ; q_pe]·[c_kv ; k_pe];
    /// attend over the latents (one shared KV head), then o_h = W_UV_h · (Σ p·c_kv).
    /// </summary>
    private void AbsorbedAttention(Layer L, int l, KvCache cache, Workspace ws, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, int n)
    {
        var c = Config;
        var mla = c.Mla!;
        int H = c.Heads, nope = mla.NopeDim, rope = mla.RopeDim, qk = mla.QkHeadDim, kvLora = mla.KvLoraRank, vDim = mla.VDim;
        int cacheDim = mla.CacheDim;
        var q = ws.Span(ws.Q, 0, n * H * qk);
        var kva = ws.Span(ws.Kva, 0, n * cacheDim);
        var ckv = ws.Span(ws.C, 0, n * kvLora);
        var qAbs = ws.Span(ws.QAbs, 0, n * H * cacheDim);
        var a = ws.Span(ws.TmpA, 0, n * Math.Max(nope, kvLora));
        var b = ws.Span(ws.TmpB, 0, n * Math.Max(kvLora, vDim));

        for (int t = 0; t < n; t++)
        {
            long row = (long)positions[t] * cacheDim;
            cache.StoreK(ckv.Slice(t * kvLora, kvLora), cache.K(l, slots[t]), row);
            cache.StoreK(kva.Slice(t * cacheDim + kvLora, rope), cache.K(l, slots[t]), row + kvLora);
        }

        // q̃: (n, H, kv_lora + rope) = [W_UK_hᵀ q_nope_h ; q_pe_h]; the split layout runs all heads in one pass
        var products = ws.Products;
        for (int h = 0; h < H; h++)
        {
            if (L.UkRowsAreLatent)
            {
                products[h] = new MatMulProduct(L.Uk[h], ws.Q + h * qk, H * qk, n, ws.QAbs + h * cacheDim, H * cacheDim);
            }
            else
            {
                for (int t = 0; t < n; t++) q.Slice((t * H + h) * qk, nope).CopyTo(a.Slice(t * nope, nope));
                var qt = b.Slice(0, n * kvLora);
                Ops.MatMulTransposed(L.Uk[h], a[..(n * nope)], n, qt);
                for (int t = 0; t < n; t++) qt.Slice(t * kvLora, kvLora).CopyTo(qAbs.Slice((t * H + h) * cacheDim, kvLora));
            }
            for (int t = 0; t < n; t++) q.Slice((t * H + h) * qk + nope, rope).CopyTo(qAbs.Slice((t * H + h) * cacheDim + kvLora, rope));
        }
        if (L.UkRowsAreLatent) MatMul.Compute(_pool, products.AsSpan(0, H));

        fixed (int* pos = positions)
        fixed (int* sl = slots)
        {
            var job = new AttentionJob
            {
                Q = ws.QAbs, QTokenStride = H * cacheDim, QHeadStride = cacheDim,
                Out = ws.OLat, OutTokenStride = H * kvLora, OutHeadStride = kvLora,
                K = cache.K(l, 0), KSlotStride = (long)cache.Capacity * cacheDim, KRowStride = cacheDim, KHeadStride = 0,
                V = cache.K(l, 0), VSlotStride = (long)cache.Capacity * cacheDim, VRowStride = cacheDim, VHeadStride = 0,
                Positions = pos, Slots = sl, KType = cache.KType, VType = cache.KType,
                Heads = H, GqaRatio = H, HeadDim = cacheDim, ValueDim = kvLora, Scale = _kqScale,
            };
            Attention.Run(_pool, ref job, n);
        }

        // att: (n, H, v) with o_h = W_UV_h · o_latent_h, all heads in one pass
        if (Observer != null && L.UkRowsAreLatent)
        {
            var oLat = ws.Span(ws.OLat, 0, n * H * kvLora);
            for (int h = 0; h < H; h++) Observe(l, "attn_v_b", oLat[(h * kvLora)..], n, kvLora, H * kvLora, h, H);
        }
        for (int h = 0; h < H; h++)
            products[h] = new MatMulProduct(L.Uv[h], ws.OLat + h * kvLora, H * kvLora, n, ws.Att + h * vDim, H * vDim);
        MatMul.Compute(_pool, products.AsSpan(0, H));
    }

    /// <summary>Naive MLA: per head k_h = [W_UK_h c_kv ; k_pe], v_h = W_UV_h c_kv in the cache; ordinary multi-head attention.</summary>
    private void NaiveAttention(Layer L, int l, KvCache cache, Workspace ws, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, int n)
    {
        var c = Config;
        var mla = c.Mla!;
        int H = c.Heads, nope = mla.NopeDim, rope = mla.RopeDim, qk = mla.QkHeadDim, kvLora = mla.KvLoraRank, vDim = mla.VDim;
        var kva = ws.Span(ws.Kva, 0, n * (kvLora + rope));
        var ckv = ws.Span(ws.C, 0, n * kvLora);
        var a = ws.Span(ws.TmpA, 0, n * Math.Max(nope, kvLora));
        var b = ws.Span(ws.TmpB, 0, n * Math.Max(kvLora, vDim));
        int kDim = H * qk, vRow = H * vDim;

        for (int h = 0; h < H; h++)
        {
            var kn = a.Slice(0, n * nope);
            if (L.UkRowsAreLatent) Ops.MatMulTransposed(L.Uk[h], ckv, n, kn);
            else MatMul.Compute(_pool, L.Uk[h], ckv, n, kn);
            var v = b.Slice(0, n * vDim);
            MatMul.Compute(_pool, L.Uv[h], ckv, n, v);
            for (int t = 0; t < n; t++)
            {
                long kRow = (long)positions[t] * kDim + h * qk;
                cache.StoreK(kn.Slice(t * nope, nope), cache.K(l, slots[t]), kRow);
                cache.StoreK(kva.Slice(t * (kvLora + rope) + kvLora, rope), cache.K(l, slots[t]), kRow + nope);
                cache.StoreV(v.Slice(t * vDim, vDim), cache.V(l, slots[t]), (long)positions[t] * vRow + h * vDim);
            }
        }

        fixed (int* pos = positions)
        fixed (int* sl = slots)
        {
            var job = new AttentionJob
            {
                Q = ws.Q, QTokenStride = H * qk, QHeadStride = qk,
                Out = ws.Att, OutTokenStride = H * vDim, OutHeadStride = vDim,
                K = cache.K(l, 0), KSlotStride = (long)cache.Capacity * kDim, KRowStride = kDim, KHeadStride = qk,
                V = cache.V(l, 0), VSlotStride = (long)cache.Capacity * vRow, VRowStride = vRow, VHeadStride = vDim,
                Positions = pos, Slots = sl, KType = cache.KType, VType = cache.VType,
                Heads = H, GqaRatio = 1, HeadDim = qk, ValueDim = vDim, Scale = _kqScale,
            };
            Attention.Run(_pool, ref job, n);
        }
    }

    /// <summary>output = Down(silu(Gate·x) * (Up·x)) for <paramref name="n"/> rows.</summary>
    private void SwiGluFfn(in WeightMatrix gateW, in WeightMatrix upW, in WeightMatrix downW, int l, Workspace ws, ReadOnlySpan<float> x, int n, Span<float> output)
    {
        int hidden = gateW.Rows;
        var gate = ws.Span(ws.Gate, 0, n * hidden);
        var up = ws.Span(ws.Up, 0, n * hidden);
        if (Observer != null)
        {
            Observe(l, "ffn_gate", x, n, gateW.Cols);
            Observe(l, "ffn_up", x, n, upW.Cols);
        }
        MatMul.Compute(_pool, gateW, upW, x, n, gate, up);
        Ops.SwiGlu(_pool, gate, up);
        Observe(l, "ffn_down", gate, n, hidden);
        MatMul.Compute(_pool, downW, gate, n, output);
    }

    /// <summary>
    /// Routed experts plus shared ones, on xb. The router returns (weights, indices) per token; the token slots are then
    /// grouped by expert so each chosen expert's weights are read once per chunk, and experts no token chose are
    /// skipped. Three pool passes whatever the number of experts: the router with the shared expert's gate and up, the
    /// gate and up of all chosen experts with the shared expert's down, then the chosen experts' down products. A
    /// decode step's SwiGLUs run on the calling thread between the passes (a few thousand values: less than a pool
    /// pass costs). Writes FfnOut: (n, dim).
    /// </summary>
    private void MixtureOfExperts(Layer L, int l, Workspace ws, int n)
    {
        var c = Config;
        var moe = c.Moe!;
        int dim = c.Dim, E = moe.Experts, k = moe.ExpertsUsed, eff = moe.ExpertFfnDim, nk = n * k;
        int sh = L.HasShared ? L.Gate.Rows : 0;
        float* x = ws.Xb;
        // hidden rows: (n·k, eff) of the routed slots, then (n, sh) of the shared expert(s), so one SwiGLU covers both
        float* sGate = ws.Gate + (long)nk * eff, sUp = ws.Up + (long)nk * eff;
        var products = ws.Products;

        int np = 0;
        if (Observer != null)
        {
            var xs = new ReadOnlySpan<float>(x, n * dim);
            Observe(l, "ffn_gate_inp", xs, n, dim);
            if (L.HasShared)
            {
                Observe(l, "ffn_gate_shexp", xs, n, dim);
                Observe(l, "ffn_up_shexp", xs, n, dim);
            }
        }
        products[np++] = new MatMulProduct(L.Router, x, n, ws.Router);
        if (L.HasShared)
        {
            products[np++] = new MatMulProduct(L.Gate, x, n, sGate);
            products[np++] = new MatMulProduct(L.Up, x, n, sUp);
        }
        MatMul.Compute(_pool, products.AsSpan(0, np));
        if (L.HasShared) SwiGlu(ws.Span(sGate, 0, n * sh), ws.Span(sUp, 0, n * sh));

        var chosen = ws.Chosen;   // (n, k) expert ids
        var weights = ws.Weights; // (n, k)
        var routerLogits = ws.Span(ws.Router, 0, n * E);
        for (int t = 0; t < n; t++)
            MoeRouter.Route(moe, routerLogits.Slice(t * E, E), L.RouterBias, chosen.AsSpan(t * k, k), weights.AsSpan(t * k, k), ws.Selection);

        // order: the (token, rank) slots sorted by expert, tokens ascending; expert e owns order[start[e] .. start[e + 1])
        var start = ws.ExpertStart;
        var order = ws.Order;
        Array.Clear(start);
        for (int i = 0; i < nk; i++) start[chosen[i] + 1]++;
        for (int e = 0; e < E; e++) start[e + 1] += start[e];
        var cursor = ws.Cursor;
        Array.Copy(start, cursor, E);
        for (int i = 0; i < nk; i++) order[cursor[chosen[i]]++] = i;

        // from a mapping, the chosen experts' pages are asked for all at once: a model larger than memory then reads
        // the ones the page cache lacks side by side, instead of one fault at a time as the products reach them
        if (_prefetchExperts)
            for (int e = 0; e < E; e++)
                if (start[e + 1] > start[e])
                    foreach (var m in (ReadOnlySpan<WeightMatrix>)[L.ExpGate[e], L.ExpUp[e], L.ExpDown[e]])
                        HugePages.WillNeed(m.Data, m.Bytes);

        // gate and up of each chosen expert over its tokens (an expert that every token chose reads xb itself)
        np = 0;
        for (int e = 0; e < E; e++)
        {
            int s0 = start[e], m = start[e + 1] - s0;
            if (m == 0) continue;
            float* xe = x;
            if (m < n)
            {
                xe = ws.Gathered + (long)s0 * dim;
                for (int j = 0; j < m; j++)
                    new ReadOnlySpan<float>(x + (long)(order[s0 + j] / k) * dim, dim).CopyTo(new Span<float>(xe + (long)j * dim, dim));
            }
            if (Observer != null)
            {
                var xs = new ReadOnlySpan<float>(xe, m * dim);
                Observe(l, "ffn_gate_exps", xs, m, dim, slice: e, slices: E, expert: true);
                Observe(l, "ffn_up_exps", xs, m, dim, slice: e, slices: E, expert: true);
            }
            products[np++] = new MatMulProduct(L.ExpGate[e], xe, m, ws.Gate + (long)s0 * eff);
            products[np++] = new MatMulProduct(L.ExpUp[e], xe, m, ws.Up + (long)s0 * eff);
        }
        // the shared expert(s)' down in the same pass, straight into the output
        var output = ws.Span(ws.FfnOut, 0, n * dim);
        if (L.HasShared)
        {
            Observe(l, "ffn_down_shexp", new ReadOnlySpan<float>(sGate, n * sh), n, sh);
            products[np++] = new MatMulProduct(L.Down, sGate, n, ws.FfnOut);
        }
        else output.Clear();
        MatMul.Compute(_pool, products.AsSpan(0, np));
        SwiGlu(ws.Span(ws.Gate, 0, nk * eff), ws.Span(ws.Up, 0, nk * eff));

        // down: each chosen expert's rows into its slots of ExpertOut
        np = 0;
        for (int e = 0; e < E; e++)
        {
            int s0 = start[e], m = start[e + 1] - s0;
            if (m == 0) continue;
            Observe(l, "ffn_down_exps", new ReadOnlySpan<float>(ws.Gate + (long)s0 * eff, m * eff), m, eff, slice: e, slices: E, expert: true);
            products[np++] = new MatMulProduct(L.ExpDown[e], ws.Gate + (long)s0 * eff, m, ws.ExpertOut + (long)s0 * dim);
        }
        MatMul.Compute(_pool, products.AsSpan(0, np));

        // output += Σ weight · expert output, experts in ascending order
        for (int j = 0; j < nk; j++)
        {
            int slot = order[j];
            var dst = output.Slice(slot / k * dim, dim);
            TensorPrimitives.MultiplyAdd(ws.Span(ws.ExpertOut, j * dim, dim), weights[slot], dst, dst);
        }
    }

    /// <summary>
    /// SwiGLU in place on <paramref name="gate"/>: on the calling thread up to <see cref="InlineSwiGlu"/> values (a
    /// decode step's experts), over the pool above.
    /// </summary>
    private void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (gate.Length <= InlineSwiGlu) Ops.SwiGlu(gate, up);
        else Ops.SwiGlu(_pool, gate, up);
    }

    /// <summary>Values below which a SwiGLU costs less on one thread than a pool pass (6 × 1408 in V2-Lite's decode).</summary>
    private const int InlineSwiGlu = 16 * 1024;

    /// <summary>Activation buffers for one chunk, allocated once and pinned.</summary>
    private sealed class Workspace
    {
        public readonly float* X, Xb, Q, Qa, Kva, C, QAbs, OLat, TmpA, TmpB, Att, Gate, Up, FfnOut, Router, Gathered, ExpertOut, Mixed;
        public readonly float[] RopeCache;
        public readonly int[] Chosen, Order, ExpertStart, Cursor;
        public readonly float[] Weights, Selection;
        public readonly MatMulProduct[] Products;
        private readonly List<float[]> _arrays = new();

        public Workspace(ModelConfig c, int n)
        {
            var mla = c.Mla!;
            int H = c.Heads;
            // hidden rows: the dense FFN's, or (n·k, expert FFN) of the routed slots followed by (n, shared FFN)
            long hidden = (long)n * c.FfnDim;
            if (c.Moe is { } moe) hidden = Math.Max(hidden, (long)n * (moe.ExpertsUsed + moe.SharedExperts) * moe.ExpertFfnDim);
            X = Alloc(n * c.Dim);
            Mixed = c.MtpLayers > 0 ? Alloc(n * 2 * c.Dim) : null;
            Xb = Alloc(n * Math.Max(c.Dim, H * mla.VDim));
            Q = Alloc(n * H * mla.QkHeadDim);
            Qa = Alloc(n * Math.Max(1, mla.QLoraRank));
            Kva = Alloc(n * mla.CacheDim);
            C = Alloc(n * mla.KvLoraRank);
            QAbs = Alloc(n * H * mla.CacheDim);
            OLat = Alloc(n * H * mla.KvLoraRank);
            TmpA = Alloc(n * Math.Max(Math.Max(mla.NopeDim, mla.KvLoraRank), mla.VDim));
            TmpB = Alloc(n * Math.Max(mla.KvLoraRank, mla.VDim));
            Att = Alloc(n * H * mla.VDim);
            Gate = Alloc(checked((int)hidden));
            Up = Alloc(checked((int)hidden));
            FfnOut = Alloc(n * c.Dim);
            int experts = c.Moe?.Experts ?? 1, used = c.Moe?.ExpertsUsed ?? 1;
            Router = Alloc(n * experts);
            Gathered = Alloc(n * used * c.Dim);
            ExpertOut = Alloc(n * used * c.Dim);
            RopeCache = new float[n * mla.RopeDim];
            Chosen = new int[n * used];
            Weights = new float[n * used];
            Order = new int[n * used];
            ExpertStart = new int[experts + 1];
            Cursor = new int[experts];
            Selection = new float[experts];
            Products = new MatMulProduct[Math.Max(2 * experts + 3, H)];
        }

        public Span<float> Span(float* p, int offset, int length) => new(p + offset, length);

        private float* Alloc(int count)
        {
            var a = GC.AllocateUninitializedArray<float>(Math.Max(count, 1), pinned: true);
            _arrays.Add(a);
            return (float*)Unsafe.AsPointer(ref a[0]);
        }
    }

    public void Dispose() { }
}

/// <summary>DeepSeek's expert router: gating, the selection bias, group-limited top-k, weight normalization and scale.</summary>
public static unsafe class MoeRouter
{
    /// <summary>
    /// Chooses <c>ExpertsUsed</c> experts for one token from its router logits. Writes their ids and weights.
    /// Selection uses s + bias; the weights are the unbiased s of the chosen experts.
    /// </summary>
    public static void Route(MoeConfig moe, ReadOnlySpan<float> logits, float* bias, Span<int> chosen, Span<float> weights, Span<float> scratch)
    {
        int E = moe.Experts, k = moe.ExpertsUsed;
        Span<float> s = scratch[..E];
        if (moe.Gating == ExpertGating.Sigmoid)
        {
            for (int i = 0; i < E; i++) s[i] = 1.0f / (1.0f + MathF.Exp(-logits[i]));
        }
        else
        {
            float max = float.NegativeInfinity;
            foreach (float l in logits) max = MathF.Max(max, l);
            double sum = 0;
            for (int i = 0; i < E; i++) { s[i] = MathF.Exp(logits[i] - max); sum += s[i]; }
            float inv = (float)(1.0 / sum);
            for (int i = 0; i < E; i++) s[i] *= inv;
        }

        Span<float> sel = stackalloc float[E];
        for (int i = 0; i < E; i++) sel[i] = bias != null ? s[i] + bias[i] : s[i];

        if (moe.Groups > 1)
        {
            // score each group by the sum of its two best experts; keep the best GroupsUsed groups
            int per = E / moe.Groups;
            Span<float> groupScore = stackalloc float[moe.Groups];
            for (int g = 0; g < moe.Groups; g++)
            {
                float best = float.NegativeInfinity, second = float.NegativeInfinity;
                foreach (float v in sel.Slice(g * per, per))
                {
                    if (v > best) { second = best; best = v; }
                    else if (v > second) second = v;
                }
                groupScore[g] = per > 1 ? best + second : best;
            }
            Span<bool> keep = stackalloc bool[moe.Groups];
            for (int r = 0; r < moe.GroupsUsed; r++)
            {
                int arg = -1;
                for (int g = 0; g < moe.Groups; g++)
                    if (!keep[g] && (arg < 0 || groupScore[g] > groupScore[arg])) arg = g;
                keep[arg] = true;
            }
            for (int g = 0; g < moe.Groups; g++)
                if (!keep[g]) sel.Slice(g * per, per).Fill(float.NegativeInfinity);
        }

        // top-k by selection score, best first
        Span<bool> taken = stackalloc bool[E];
        for (int r = 0; r < k; r++)
        {
            int arg = -1;
            for (int i = 0; i < E; i++)
                if (!taken[i] && (arg < 0 || sel[i] > sel[arg])) arg = i;
            taken[arg] = true;
            chosen[r] = arg;
            weights[r] = s[arg];
        }

        if (moe.NormalizeWeights)
        {
            float sum = 0;
            foreach (float w in weights[..k]) sum += w;
            sum = MathF.Max(sum, 6.103515625e-5f); // ggml clamps the sum away from 0
            for (int r = 0; r < k; r++) weights[r] /= sum;
        }
        for (int r = 0; r < k; r++) weights[r] *= moe.WeightsScale;
    }
}
