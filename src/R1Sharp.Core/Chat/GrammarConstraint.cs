// A grammar applied to an R1 answer: the chain of thought stays free and the grammar takes over after </think>
// (after up to two whitespace-only tokens, where R1 writes its "\n\n"), or from the first token when the prompt
// opened no think block (thinking off, or a format without one). Lazily, it may instead wait in the answer for a trigger text (a tool-call opener)
// and constrain what follows it: the model may answer in prose, and once it opens a block of calls, the calls follow
// the tools' schemas. An answer held to a grammar must come: while the reasoning runs, end-of-generation tokens are
// refused (a model that would stop inside its reasoning goes on to close it), so a forced call or a JSON answer is
// never lost to an early stop.
using System.Runtime.CompilerServices;
using System.Text;
using R1Sharp.Engine;
using R1Sharp.Grammar;

namespace R1Sharp.Chat;

public sealed class GrammarConstraint : ITokenConstraint
{
    private enum Phase { Reasoning, Gap, Waiting, Grammar }

    private readonly GrammarMatcher _matcher;
    private readonly ReasoningParser _reasoning;
    private readonly string? _trigger;
    private readonly StringBuilder _answer = new();
    private Phase _phase;
    private int _gapTokens, _gapChars;

    // R1 writes "\n\n" after </think>, in one token or two; this much whitespace is allowed before the grammar starts
    private const int MaxGapTokens = 2, MaxGapChars = 4;

    private GrammarConstraint(CompiledGrammar grammar, bool startsInReasoning, string? trigger)
    {
        _matcher = grammar.CreateMatcher();
        _reasoning = new ReasoningParser(startsInReasoning);
        _trigger = trigger;
        // without reasoning the grammar holds from the first token; the gap is R1's blank line after </think>
        _phase = startsInReasoning ? Phase.Reasoning : trigger is null ? Phase.Grammar : Phase.Waiting;
    }

    /// <summary>The whole answer follows <paramref name="grammar"/> (after the reasoning when the prompt opened a think block).</summary>
    public static GrammarConstraint ForAnswer(CompiledGrammar grammar, bool startsInReasoning) => new(grammar, startsInReasoning, null);

    /// <summary>The answer is free until it contains <paramref name="trigger"/>; what follows the trigger follows <paramref name="grammar"/>.</summary>
    public static GrammarConstraint AfterTrigger(CompiledGrammar grammar, bool startsInReasoning, string trigger) =>
        new(grammar, startsInReasoning, trigger);

    /// <summary>The grammar has started (the reasoning is over, and the trigger seen where there is one).</summary>
    public bool Started => _phase == Phase.Grammar;

    public bool Active => _phase is Phase.Gap or Phase.Grammar || (_phase == Phase.Reasoning && _trigger is null);

    public bool IsAllowed(int token) => _phase switch
    {
        Phase.Reasoning => !_matcher.Grammar.Vocabulary.IsEnd(token),
        Phase.Gap => _matcher.IsAllowed(token) || GapAllows(token),
        Phase.Grammar => _matcher.IsAllowed(token),
        _ => true,
    };

    public void FillMask(Span<ulong> allowed)
    {
        if (_phase == Phase.Reasoning)
        {
            // everything but the end: the reasoning is free, the answer must still come
            allowed.Fill(ulong.MaxValue);
            foreach (int t in _matcher.Grammar.Vocabulary.EndTokens)
                if ((t >> 6) < allowed.Length) allowed[t >> 6] &= ~(1UL << (t & 63));
            return;
        }
        _matcher.FillMask(allowed);
        if (_phase != Phase.Gap) return;
        var ws = WhitespaceTokens(_matcher.Grammar.Vocabulary);
        int words = Math.Min(allowed.Length, ws.Length);
        for (int w = 0; w < words; w++)
        {
            ulong bits = ws[w];
            while (bits != 0)
            {
                int t = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                if (GapAllows(t)) allowed[w] |= 1UL << (t & 63);
                bits &= bits - 1;
            }
        }
    }

    public void Accept(int token, string text)
    {
        switch (_phase)
        {
            case Phase.Reasoning:
                var d = _reasoning.Push(text);
                if (_reasoning.InReasoning) break;
                _phase = _trigger is null ? Phase.Gap : Phase.Waiting;
                // answer text in the same token as </think> (the whitespace after it is already dropped)
                if (d.Content.Length == 0) break;
                if (_phase == Phase.Waiting) Accept(token, d.Content);
                else if (_matcher.AcceptBytes(Encoding.UTF8.GetBytes(d.Content))) _phase = Phase.Grammar;
                break;
            case Phase.Gap:
                if (_matcher.Accept(token)) _phase = Phase.Grammar;
                else if (GapAllows(token)) { _gapTokens++; _gapChars += _matcher.Grammar.Vocabulary.Bytes(token).Length; }
                break;
            case Phase.Grammar:
                _matcher.Accept(token);
                break;
            case Phase.Waiting:
                _answer.Append(text);
                int at = _answer.ToString().IndexOf(_trigger!, StringComparison.Ordinal);
                if (at < 0) break;
                // what the token wrote past the trigger is the grammar's first text
                string rest = _answer.ToString()[(at + _trigger!.Length)..];
                _phase = Phase.Grammar;
                if (rest.Length > 0) _matcher.AcceptBytes(Encoding.UTF8.GetBytes(rest));
                break;
        }
    }

    private bool GapAllows(int token)
    {
        var vocab = _matcher.Grammar.Vocabulary;
        if ((uint)token >= (uint)vocab.Size || !vocab.IsEligible(token)) return false;
        var b = vocab.Bytes(token);
        if (b.Length == 0 || _gapTokens >= MaxGapTokens || _gapChars + b.Length > MaxGapChars) return false;
        foreach (byte c in b) if (c is not ((byte)'\n' or (byte)' ')) return false;
        return true;
    }

    private static readonly ConditionalWeakTable<GrammarVocabulary, ulong[]> s_whitespace = new();

    // the tokens made of spaces and newlines only, at most MaxGapChars of them, once per vocabulary
    private static ulong[] WhitespaceTokens(GrammarVocabulary vocab) => s_whitespace.GetValue(vocab, v =>
    {
        var mask = new ulong[v.MaskWords];
        for (int t = 0; t < v.Size; t++)
        {
            if (!v.IsEligible(t)) continue;
            var b = v.Bytes(t);
            if (b.Length == 0 || b.Length > MaxGapChars) continue;
            bool ws = true;
            foreach (byte c in b) ws &= c is (byte)'\n' or (byte)' ';
            if (ws) mask[t >> 6] |= 1UL << (t & 63);
        }
        return mask;
    });
}
