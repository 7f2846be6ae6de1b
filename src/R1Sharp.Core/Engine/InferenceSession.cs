// One sequence on one model: prefill a prompt in one batched pass, then decode token by token.
// The CLI's generate, logits and bench verbs run on this; the server schedules many slots itself.
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;

namespace R1Sharp.Engine;

public sealed class InferenceSession : IDisposable
{
    private readonly ICausalLM _model;
    private readonly Batch _batch = new();
    private readonly List<int> _tokens = new();
    private float[] _logits;
    private int _lastRow;

    /// <summary>
    /// A session of up to <paramref name="contextSize"/> positions, its KV cache of <paramref name="cacheType"/> keys and
    /// <paramref name="cacheTypeV"/> values (F32, F16 or Q8_0; values default to the key type).
    /// </summary>
    public InferenceSession(ICausalLM model, int contextSize, GgmlType cacheType = GgmlType.F32, GgmlType? cacheTypeV = null)
    {
        _model = model;
        Cache = model.CreateCache(1, contextSize, cacheType, cacheTypeV);
        _logits = new float[model.Config.VocabSize];
    }

    public KvCache Cache { get; }
    public int ContextSize => Cache.Capacity;
    public IReadOnlyList<int> Tokens => _tokens;
    public int VocabSize => _model.Config.VocabSize;
    public ICausalLM Model => _model;

    /// <summary>Logits after the last token evaluated (a row of VocabSize).</summary>
    public ReadOnlySpan<float> LastLogits => _logits.AsSpan(_lastRow * VocabSize, VocabSize);

    public void Reset() => Truncate(0);

    /// <summary>Forgets every token from position <paramref name="length"/> on (a shared prefix stays cached).</summary>
    public void Truncate(int length)
    {
        length = Math.Clamp(length, 0, _tokens.Count);
        Cache.Truncate(0, length);
        _tokens.RemoveRange(length, _tokens.Count - length);
    }

    /// <summary>Appends tokens to the sequence and returns logits for the last one (or for all of them with <paramref name="allLogits"/>, in a new array).</summary>
    public ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens, bool allLogits = false)
    {
        var rows = Evaluate(tokens, allLogits ? tokens.Length : 1, default);
        return allLogits ? rows.ToArray() : rows;
    }

    /// <summary>
    /// Appends tokens to the sequence and returns the logits of its last <paramref name="rows"/> tokens (rows ×
    /// VocabSize, valid until the next call; the last row is also <see cref="LastLogits"/>). Where
    /// <paramref name="hidden"/> is not empty, every token's final hidden state goes there (tokens × Dim). A
    /// speculative pass evaluates the pending token and the draft, with a row for each.
    /// </summary>
    public ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens, int rows, Span<float> hidden)
    {
        if (tokens.IsEmpty) throw new ArgumentException("no tokens to evaluate", nameof(tokens));
        if (rows < 1 || rows > tokens.Length) throw new ArgumentOutOfRangeException(nameof(rows), $"rows must be in 1..{tokens.Length} (got {rows})");
        if (_tokens.Count + tokens.Length > ContextSize)
            throw new InvalidOperationException($"the sequence would hold {_tokens.Count + tokens.Length} tokens, past the context size {ContextSize}");
        _batch.Clear();
        for (int i = 0; i < tokens.Length; i++) _batch.Add(tokens[i], _tokens.Count + i, 0, i >= tokens.Length - rows);
        if (_logits.Length < rows * VocabSize) _logits = new float[rows * VocabSize];
        _model.Forward(_batch, Cache, _logits, hidden);
        foreach (int t in tokens) _tokens.Add(t);
        _lastRow = rows - 1;
        return _logits.AsSpan(0, rows * VocabSize);
    }

    /// <summary>
    /// Prefills <paramref name="prompt"/> and samples up to <paramref name="maxTokens"/> tokens, stopping after a token
    /// for which <paramref name="isStop"/> is true (that token is yielded too) or when the context is full.
    /// </summary>
    public IEnumerable<int> Generate(int[] prompt, Sampler sampler, int maxTokens, Func<int, bool> isStop)
    {
        Evaluate(prompt);
        for (int i = 0; i < maxTokens; i++)
        {
            int next = sampler.Sample(LastLogits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_tokens));
            yield return next;
            if (isStop(next) || _tokens.Count >= ContextSize) yield break;
            if (i + 1 < maxTokens) Evaluate([next]);
        }
    }

    public void Dispose() => Cache.Dispose();
}
