// Drafts from the target's own multi-token-prediction head (DeepSeek-V3's MTP, the nextn layers of deepseek2 files):
// the head's block runs beside the main model with a KV cache of its own. Its entry at position i reads the main
// model's final hidden state at i and the embedding of token i+1, and its logits predict token i+2. After each
// target pass the entries of the accepted positions are added (the hidden states come from Observe), and the draft
// chains: the head's own output stands in for the main model's hidden state at the next position, as vLLM and
// llama.cpp chain one MTP layer into several draft tokens. Drafts are the head's argmax (point masses), cut short
// when its confidence falls below p-min.
using R1Sharp.Models;
using R1Sharp.Sampling;

namespace R1Sharp.Engine;

/// <summary>The MTP head of the target for every slot (<c>--spec mtp</c>).</summary>
public sealed class MtpSource : IDraftSource
{
    /// <param name="endOfGeneration">Tokens that end the target's generation: nothing is drafted past one.</param>
    public MtpSource(ICausalLM target, IReadOnlySet<int> endOfGeneration, float pMin = DraftModelSource.DefaultPMin)
    {
        EndOfGeneration = endOfGeneration;
        if (!(pMin >= 0 && pMin <= 1)) throw new ArgumentException($"--draft-p-min must be in [0, 1] (got {pMin})");
        Head = target.Mtp ?? throw new ArgumentException(
            $"--spec mtp needs a model with multi-token-prediction layers (deepseek2 with nextn_predict_layers); this {target.Config.Architecture} file has none");
        VocabSize = target.Config.VocabSize;
        PMin = pMin;
    }

    public IMtpHead Head { get; }
    public IReadOnlySet<int> EndOfGeneration { get; }
    public int VocabSize { get; }
    public float PMin { get; }
    public string Name => "mtp";

    public IDraftProposer CreateProposer(int contextSize) => new MtpProposer(this, contextSize);

    public void Dispose() { }
}

public sealed class MtpProposer : IDraftProposer, IHiddenStateObserver
{
    private readonly MtpSource _source;
    private readonly KvCache _cache;
    private readonly Batch _batch = new();
    private readonly int _dim;
    /// <summary>Entries in the head's cache built on the main model's hidden states (positions 0.._len − 1).</summary>
    private int _len;
    /// <summary>The sequence those entries were built on.</summary>
    private readonly List<int> _seq = new();
    /// <summary>Hidden states the target handed over, for positions _rowBase.._rowBase + _rowCount − 1, with their tokens.</summary>
    private float[] _rows = [];
    private int[] _rowTokens = [];
    private int _rowBase, _rowCount;
    private float[] _in = [], _out = [], _logits = [];

    public MtpProposer(MtpSource source, int contextSize)
    {
        _source = source;
        _dim = source.Head.Dim;
        _cache = source.Head.CreateCache(1, contextSize);
    }

    public void Start(SamplingParams sampling) { }

    public void Observe(ReadOnlySpan<int> tokens, int startPos, ReadOnlySpan<float> hidden)
    {
        if (startPos < _rowBase || startPos > _rowBase + _rowCount)
        {
            _rowBase = startPos;
            _rowCount = 0;
        }
        _rowCount = startPos - _rowBase;
        int need = _rowCount + tokens.Length;
        if (_rowTokens.Length < need)
        {
            Array.Resize(ref _rowTokens, Math.Max(need, 2 * _rowTokens.Length));
            Array.Resize(ref _rows, _rowTokens.Length * _dim);
        }
        tokens.CopyTo(_rowTokens.AsSpan(_rowCount));
        hidden[..(tokens.Length * _dim)].CopyTo(_rows.AsSpan(_rowCount * _dim));
        _rowCount = need;
    }

    public void Propose(ReadOnlySpan<int> tokens, Draft draft)
    {
        int length = tokens.Length;
        int max = Math.Min(draft.Max, _cache.Capacity - length + 1);
        if (length < 2 || max <= 0) return;

        // entry i read tokens 0..i+1: keep those still in the sequence, and always rebuild the last one for its logits
        int common = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_seq).CommonPrefixLength(tokens);
        _len = Math.Max(0, Math.Min(Math.Min(_len, common - 1), length - 2));
        _cache.Truncate(0, _len);
        _seq.Clear();
        foreach (int t in tokens) _seq.Add(t);

        // catch up: entries _len .. length − 2, each from the target's hidden state at i (zeros where it never came:
        // a prefix reused from the cache) and token i + 1
        int n = length - 1 - _len;
        Ensure(n);
        _batch.Clear();
        for (int i = _len; i < length - 1; i++)
        {
            var row = _in.AsSpan((i - _len) * _dim, _dim);
            int r = i - _rowBase;
            if (r >= 0 && r < _rowCount && _rowTokens[r] == tokens[i]) _rows.AsSpan(r * _dim, _dim).CopyTo(row);
            else row.Clear();
            _batch.Add(tokens[i + 1], i, 0, i == length - 2);
        }
        _source.Head.Forward(_batch, _in, _cache, _logits, _out);
        _len = length - 1;
        DropRowsBefore(length - 1);

        // chain: the head's output at the last position stands in for the main model's hidden state at the next
        int pos = length - 1;
        var last = _out.AsSpan((n - 1) * _dim, _dim);
        while (true)
        {
            var logits = _logits.AsSpan(0, _source.VocabSize);
            int id = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);
            if (Sampler.MaxProbability(logits) < _source.PMin) return;
            draft.Add(id);
            if (draft.Count >= max || _source.EndOfGeneration.Contains(id)) return;
            last.CopyTo(_in);
            _batch.Clear();
            _batch.Add(id, pos++, 0, true);
            _source.Head.Forward(_batch, _in.AsSpan(0, _dim), _cache, _logits, _out);
            last = _out.AsSpan(0, _dim);
        }
    }

    private void Ensure(int rows)
    {
        if (_in.Length < rows * _dim)
        {
            _in = new float[rows * _dim];
            _out = new float[rows * _dim];
        }
        if (_logits.Length < _source.VocabSize) _logits = new float[_source.VocabSize];
    }

    private void DropRowsBefore(int pos)
    {
        int drop = Math.Clamp(pos - _rowBase, 0, _rowCount);
        if (drop == 0) return;
        _rowTokens.AsSpan(drop, _rowCount - drop).CopyTo(_rowTokens);
        _rows.AsSpan(drop * _dim, (_rowCount - drop) * _dim).CopyTo(_rows);
        _rowBase += drop;
        _rowCount -= drop;
    }

    public void Accepted(int proposed, int accepted) { }

    public void Dispose() => _cache.Dispose();
}
