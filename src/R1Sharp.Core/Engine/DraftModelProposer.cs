// Drafts from a second, smaller model with the target's vocabulary (llama.cpp's -md): the draft decodes K tokens
// ahead on its own KV cache, greedily where the target is greedy and by sampling the target's chain where it samples
// (each token with its distribution q, for the min(1, p/q) test), and stops early when its confidence falls below
// p-min (its most likely token's probability; llama.cpp's --draft-p-min). Its cache follows the sequence by common
// prefix, so rejected drafts are forgotten and a reused prompt prefix is not run again.
using System.Runtime.InteropServices;
using R1Sharp.Sampling;
using R1Sharp.Tokenization;

namespace R1Sharp.Engine;

/// <summary>A draft model for every slot (<c>--draft-model PATH</c>); it must share the target's vocabulary.</summary>
public sealed class DraftModelSource : IDraftSource
{
    private readonly bool _ownsModel;
    private readonly IReadOnlySet<int> _endOfGeneration;

    /// <summary>
    /// Drafts with <paramref name="draft"/> for a target whose tokenizer is <paramref name="target"/>; the caller keeps
    /// owning the model unless <paramref name="ownsModel"/>. Throws an ArgumentException naming the first difference
    /// when the vocabularies differ.
    /// </summary>
    public DraftModelSource(LoadedModel draft, BpeTokenizer target, float pMin = DefaultPMin, bool ownsModel = false)
    {
        if (!(pMin >= 0 && pMin <= 1)) throw new ArgumentException($"--draft-p-min must be in [0, 1] (got {pMin})");
        CheckVocabulary(draft.Tokenizer, target);
        _endOfGeneration = target.EndOfGeneration;
        Model = draft;
        PMin = pMin;
        _ownsModel = ownsModel;
    }

    /// <summary>
    /// Loads the draft model at <paramref name="path"/> (owned by the source) for <paramref name="target"/>, on the
    /// target's worker threads (the two run one after the other).
    /// </summary>
    public static DraftModelSource Load(string path, LoadedModel target, float pMin = DefaultPMin)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"draft model file not found: {path}");
        var model = LoadedModel.Load(path, target.Pool);
        try
        {
            return new DraftModelSource(model, target.Tokenizer, pMin, ownsModel: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>llama.cpp's default --draft-p-min.</summary>
    public const float DefaultPMin = 0.75f;

    public LoadedModel Model { get; }
    public float PMin { get; }
    public string Name => "draft-model";

    public IDraftProposer CreateProposer(int contextSize) => new DraftModelProposer(Model, contextSize, PMin, _endOfGeneration);

    /// <summary>
    /// The draft may propose only ids that mean the same text to the target: the token lists must be equal. Throws an
    /// ArgumentException naming the first token that differs (or the sizes).
    /// </summary>
    public static void CheckVocabulary(BpeTokenizer draft, BpeTokenizer target)
    {
        int n = Math.Min(draft.VocabSize, target.VocabSize);
        for (int i = 0; i < n; i++)
        {
            if (draft.IdToToken(i) != target.IdToToken(i))
                throw new ArgumentException($"the draft model's vocabulary differs from the target's: token {i} is '{Printable(draft.IdToToken(i))}' in the draft, '{Printable(target.IdToToken(i))}' in the target");
        }
        if (draft.VocabSize != target.VocabSize)
            throw new ArgumentException($"the draft model's vocabulary differs from the target's: {draft.VocabSize} tokens in the draft, {target.VocabSize} in the target");
    }

    private static string Printable(string token)
    {
        var s = new System.Text.StringBuilder();
        foreach (char ch in token) s.Append(char.IsControl(ch) ? $"\\u{(int)ch:x4}" : ch.ToString());
        return s.ToString();
    }

    public void Dispose()
    {
        if (_ownsModel) Model.Dispose();
    }
}

/// <summary>One slot's draft decoder: the draft model's own session over the sequence.</summary>
public sealed class DraftModelProposer : IDraftProposer
{
    private readonly InferenceSession _session;
    private readonly float _pMin;
    private readonly IReadOnlySet<int> _endOfGeneration;
    private readonly List<int> _history = new();
    private readonly List<TokenDistribution> _q = new();
    private Sampler? _sampler;

    /// <param name="endOfGeneration">Tokens that end the target's generation: nothing is drafted past one.</param>
    public DraftModelProposer(LoadedModel draft, int contextSize, float pMin, IReadOnlySet<int> endOfGeneration)
    {
        _session = new InferenceSession(draft.Model, contextSize);
        _pMin = pMin;
        _endOfGeneration = endOfGeneration;
    }

    public void Start(SamplingParams sampling)
    {
        // its own stream: the target's draws stay those of the same seed without speculation
        _sampler = sampling.Temperature == 0 ? null : new Sampler(sampling with { Seed = sampling.Seed ^ 0x5eed_d4af_7000_0001UL });
    }

    public void Propose(ReadOnlySpan<int> tokens, Draft draft)
    {
        int length = tokens.Length;
        // the i-th draft token comes from the logits after the sequence and i − 1 drafts: all must fit the cache
        int max = Math.Min(draft.Max, _session.ContextSize - length + 1);
        if (length == 0 || max <= 0) return;
        var held = _session.Tokens;
        int keep = 0;
        while (keep < length - 1 && keep < held.Count && held[keep] == tokens[keep]) keep++;
        _session.Truncate(keep);
        var logits = _session.Evaluate(tokens[keep..]);
        _history.Clear();
        foreach (int t in tokens) _history.Add(t);
        while (true)
        {
            int id;
            TokenDistribution? q = null;
            float confidence;
            if (_sampler is null)
            {
                id = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);
                confidence = Sampler.MaxProbability(logits);
            }
            else
            {
                while (_q.Count <= draft.Count) _q.Add(new TokenDistribution());
                q = _q[draft.Count];
                id = _sampler.Sample(logits, CollectionsMarshal.AsSpan(_history), q);
                confidence = q.Max;
            }
            if (confidence < _pMin) return;
            draft.Add(id, q);
            if (draft.Count >= max || _endOfGeneration.Contains(id)) return;
            _history.Add(id);
            _session.Evaluate([id]);
            logits = _session.LastLogits;
        }
    }

    public void Accepted(int proposed, int accepted) { }

    public void Dispose() => _session.Dispose();
}
