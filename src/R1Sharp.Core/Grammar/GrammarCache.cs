// Compiled grammars of one model's vocabulary, kept for the requests that ask for the same schema again (a client
// sends its schema with every request): compiling and the token sets computed on first use are paid once. The
// vocabulary itself (token bytes and their trie) is built once per tokenizer, on the first grammar asked for.
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using R1Sharp.Tokenization;

namespace R1Sharp.Grammar;

public sealed class GrammarCache
{
    private static readonly ConditionalWeakTable<BpeTokenizer, GrammarCache> s_caches = new();

    private readonly ConcurrentDictionary<string, CompiledGrammar> _grammars = new(StringComparer.Ordinal);
    private readonly int _capacity;

    private GrammarCache(GrammarVocabulary vocabulary, int capacity)
    {
        Vocabulary = vocabulary;
        _capacity = capacity;
    }

    /// <summary>The cache of <paramref name="tokenizer"/>'s vocabulary (made on first use, shared).</summary>
    public static GrammarCache For(BpeTokenizer tokenizer) =>
        s_caches.GetValue(tokenizer, t => new GrammarCache(GrammarVocabulary.FromTokenizer(t), capacity: 64));

    public GrammarVocabulary Vocabulary { get; }

    /// <summary>The grammar cached under <paramref name="key"/>, or <paramref name="build"/>'s, compiled and kept.</summary>
    public CompiledGrammar GetOrCompile(string key, Func<GrammarDefinition> build)
    {
        if (_grammars.TryGetValue(key, out var g)) return g;
        g = CompiledGrammar.Create(build(), Vocabulary);
        // a simple bound: past the capacity the cache starts over (token sets shared by rules stay in the vocabulary)
        if (_grammars.Count >= _capacity) _grammars.Clear();
        return _grammars.GetOrAdd(key, g);
    }
}
