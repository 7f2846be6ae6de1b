// The trainable parameters of a qwen2/llama decoder: one contiguous F32 buffer of weights and one of gradients,
// with named views in the tensor order and names the engine reads (token_embd, blk.N.attn_q, ...), so a
// checkpoint is a GGUF that DecoderModel and llama.cpp load as it is.
using System.Runtime.CompilerServices;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;
using R1Sharp.Tokenization;

namespace R1Sharp.Training;

/// <summary>One named tensor inside the parameter buffer: Rows × Cols, row-major (a GGUF {Cols, Rows} tensor).</summary>
public sealed record ParamTensor(string Name, long Offset, int Rows, int Cols)
{
    public int Length => Rows * Cols;
    public bool IsMatrix => Rows > 1;
}

public sealed unsafe class TrainModel
{
    private readonly Dictionary<string, ParamTensor> _byName = new(StringComparer.Ordinal);

    public TrainModel(ModelConfig config)
    {
        config.Validate();
        if (config.RopeDim != config.HeadDim) throw new NotSupportedException("partial RoPE is not supported by the trainer");
        Config = config;
        var c = config;
        int qDim = c.Heads * c.HeadDim, kDim = c.KvHeads * c.HeadDim, vDim = c.KvHeads * c.ValueHeadDim;
        var list = new List<ParamTensor>();
        long offset = 0;
        void Add(string name, int rows, int cols)
        {
            var p = new ParamTensor(name, offset, rows, cols);
            list.Add(p);
            _byName[name] = p;
            offset += (long)rows * cols;
        }
        Add("token_embd.weight", c.VocabSize, c.Dim);
        Add("output_norm.weight", 1, c.Dim);
        Add("output.weight", c.VocabSize, c.Dim);
        for (int l = 0; l < c.Layers; l++)
        {
            string b = $"blk.{l}.";
            Add(b + "attn_norm.weight", 1, c.Dim);
            Add(b + "attn_q.weight", qDim, c.Dim);
            Add(b + "attn_k.weight", kDim, c.Dim);
            Add(b + "attn_v.weight", vDim, c.Dim);
            if (HasQkvBias)
            {
                Add(b + "attn_q.bias", 1, qDim);
                Add(b + "attn_k.bias", 1, kDim);
                Add(b + "attn_v.bias", 1, vDim);
            }
            Add(b + "attn_output.weight", c.Dim, c.Heads * c.ValueHeadDim);
            Add(b + "ffn_norm.weight", 1, c.Dim);
            Add(b + "ffn_gate.weight", c.FfnDim, c.Dim);
            Add(b + "ffn_up.weight", c.FfnDim, c.Dim);
            Add(b + "ffn_down.weight", c.Dim, c.FfnDim);
        }
        Tensors = list;
        Count = offset;
        Weights = GC.AllocateArray<float>(checked((int)offset), pinned: true);
        Grads = GC.AllocateArray<float>(checked((int)offset), pinned: true);
    }

    public ModelConfig Config { get; }
    public bool HasQkvBias => Config.Architecture == "qwen2";
    public IReadOnlyList<ParamTensor> Tensors { get; }
    /// <summary>Number of parameters.</summary>
    public long Count { get; }
    public float[] Weights { get; }
    public float[] Grads { get; }

    public ParamTensor this[string name] => _byName[name];
    public Span<float> W(ParamTensor p) => Weights.AsSpan((int)p.Offset, p.Length);
    public Span<float> G(ParamTensor p) => Grads.AsSpan((int)p.Offset, p.Length);
    public float* WPtr(ParamTensor p) => (float*)Unsafe.AsPointer(ref Weights[p.Offset]);
    public float* GPtr(ParamTensor p) => (float*)Unsafe.AsPointer(ref Grads[p.Offset]);

    /// <summary>A weight as the engine's matrix type (F32, read in place), for the forward products.</summary>
    public WeightMatrix Matrix(ParamTensor p) => new(GgmlType.F32, (byte*)WPtr(p), p.Rows, p.Cols);

    public void ZeroGrads() => Array.Clear(Grads);

    /// <summary>A qwen2 shape for the training tasks.</summary>
    public static ModelConfig Qwen2Config(int vocabSize, int dim, int layers, int heads, int kvHeads, int ffnDim, int context) => new()
    {
        Architecture = "qwen2", VocabSize = vocabSize, Dim = dim, Layers = layers, FfnDim = ffnDim, ContextLength = context,
        Heads = heads, KvHeads = kvHeads, HeadDim = dim / heads, ValueHeadDim = dim / heads, NormEps = 1e-6f,
        RopeTheta = 10000f, RopeDim = dim / heads, RopeStyle = RopeStyle.Neox,
    };

    /// <summary>Random initialization: N(0, 0.02) embeddings, N(0, 1/√in) matrices with the residual outputs scaled by
    /// 1/√(2·layers) (GPT-2's choice), norms 1, biases 0. Deterministic for a seed.</summary>
    public void Initialize(ulong seed)
    {
        var rng = new Xoshiro256(seed);
        foreach (var p in Tensors)
        {
            var w = W(p);
            if (p.Name.EndsWith("norm.weight", StringComparison.Ordinal)) { w.Fill(1f); continue; }
            if (p.Name.EndsWith(".bias", StringComparison.Ordinal)) { w.Clear(); continue; }
            float std = p.Name == "token_embd.weight" ? 0.02f : 1f / MathF.Sqrt(p.Cols);
            if (p.Name.EndsWith("attn_output.weight", StringComparison.Ordinal) || p.Name.EndsWith("ffn_down.weight", StringComparison.Ordinal))
                std /= MathF.Sqrt(2 * Config.Layers);
            if (p.Name == "output.weight") std *= 0.5f;
            for (int i = 0; i < w.Length; i++) w[i] = std * Gaussian(ref rng);
        }
    }

    private static float Gaussian(ref Xoshiro256 rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    /// <summary>Reads a qwen2/llama GGUF (any weight type; dequantized to F32).</summary>
    public static TrainModel Load(GgufFile file)
    {
        string arch = file.RequireString("general.architecture");
        int vocab = checked((int)file.GetTensor("token_embd.weight").Shape[1]);
        var config = ModelConfig.FromGguf(file, vocab, arch == "qwen2" ? RopeStyle.Neox : RopeStyle.Normal);
        var m = new TrainModel(config);
        if (file.FindTensor("output.weight") is null) throw new NotSupportedException("the trainer needs an untied output.weight");
        foreach (var p in m.Tensors)
        {
            var t = file.GetTensor(p.Name);
            if (t.ElementCount != p.Length) throw new InvalidDataException($"{p.Name} has {t.ElementCount} values, expected {p.Length}");
            var dst = m.W(p);
            long rowBytes = GgmlTypeInfo.RowBytes(t.Type, p.Cols);
            var bytes = file.TensorBytes(t);
            for (int r = 0; r < p.Rows; r++)
                Quantization.DequantizeRow(t.Type, bytes.Slice((int)(r * rowBytes), (int)rowBytes), dst.Slice(r * p.Cols, p.Cols));
        }
        return m;
    }

    /// <summary>Writes the weights as an F32 GGUF with the metadata Synthesizer writes plus the tokenizer.</summary>
    public void Save(string path, TokenizerData vocab, string name)
    {
        var c = Config;
        string a = c.Architecture;
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of(a));
        w.SetMetadata("general.name", GgufValue.Of(name));
        w.SetMetadata("general.file_type", GgufValue.Of(0u));
        w.SetMetadata($"{a}.context_length", GgufValue.Of((uint)c.ContextLength));
        w.SetMetadata($"{a}.embedding_length", GgufValue.Of((uint)c.Dim));
        w.SetMetadata($"{a}.block_count", GgufValue.Of((uint)c.Layers));
        w.SetMetadata($"{a}.feed_forward_length", GgufValue.Of((uint)c.FfnDim));
        w.SetMetadata($"{a}.attention.head_count", GgufValue.Of((uint)c.Heads));
        w.SetMetadata($"{a}.attention.head_count_kv", GgufValue.Of((uint)c.KvHeads));
        w.SetMetadata($"{a}.rope.freq_base", GgufValue.Of(c.RopeTheta));
        w.SetMetadata($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(c.NormEps));
        foreach (var kv in vocab.ToGgufMetadata()) w.SetMetadata(kv.Key, kv.Value);
        foreach (var p in Tensors)
        {
            var bytes = new byte[p.Length * sizeof(float)];
            Buffer.BlockCopy(Weights, (int)p.Offset * sizeof(float), bytes, 0, bytes.Length);
            w.AddTensor(p.Name, GgmlType.F32, p.IsMatrix ? [p.Cols, p.Rows] : [p.Cols], bytes);
        }
        string tmp = path + $".{Environment.ProcessId}.tmp";
        w.Write(tmp);
        File.Move(tmp, path, overwrite: true);
    }

    public TrainModel Clone()
    {
        var m = new TrainModel(Config);
        Weights.CopyTo(m.Weights, 0);
        return m;
    }
}
