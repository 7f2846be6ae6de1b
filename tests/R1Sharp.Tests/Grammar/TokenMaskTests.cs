// The matcher's token masks against brute force: in states reached by random allowed tokens, a token is in the
// mask exactly when feeding its bytes one at a time keeps the grammar alive (for an end token: exactly when
// the grammar is complete). Over the Qwen2.5 vocabulary (151,665 tokens) and the tiny one.
using System.Text;
using R1Sharp.Grammar;

namespace R1Sharp.Tests.Grammar;

public sealed class TokenMaskTests
{
    public static TheoryData<string, string> Grammars => new()
    {
        { "json", GrammarTestVocab.JsonGbnf },
        { "utf8", "root ::= (\"<\" [\\u00e0-\\u00ff\\u4e00-\\u4e2f\\U0001F600-\\U0001F64F]* \">\" | [a-z]{1,3} \" \")+" },
        { "nested", "root ::= \"(\" inner* \")\"\ninner ::= root | [a-z] | \" \"" },
        { "ambiguous", "root ::= (\"ab\" | \"a\" \"b\"* | \"abc\")+ \".\"?" },
    };

    [Theory]
    [MemberData(nameof(Grammars))]
    public void MaskEqualsBruteForceOnQwen(string name, string gbnf) => CheckMasks(name, gbnf, GrammarTestVocab.Qwen, states: 12);

    [Theory]
    [MemberData(nameof(Grammars))]
    public void MaskEqualsBruteForceOnTinyVocab(string name, string gbnf) => CheckMasks(name, gbnf, GrammarTestVocab.Tiny, states: 40);

    private static void CheckMasks(string name, string gbnf, GrammarVocabulary vocab, int states)
    {
        var g = GrammarTestVocab.Compile(gbnf, vocab);
        var rng = new Random(name.Length * 7919 + vocab.Size);
        var mask = new ulong[vocab.MaskWords];
        var m = g.CreateMatcher();
        int checkedStates = 0, resets = 0;
        while (checkedStates < states)
        {
            m.FillMask(mask);
            var allowed = new List<int>();
            for (int t = 0; t < vocab.Size; t++)
            {
                bool inMask = (mask[t >> 6] >> (t & 63) & 1) != 0;
                bool brute = BruteForceAllowed(m, vocab, t);
                if (inMask != brute)
                    Assert.Fail($"{name}: token {t} ({Show(vocab.Bytes(t))}) is {(inMask ? "in" : "not in")} the mask but brute force says {brute}, after {m.TokenCount} tokens");
                Assert.Equal(brute, m.IsAllowed(t));
                if (brute) allowed.Add(t);
            }
            checkedStates++;
            Assert.NotEmpty(allowed); // the grammar never gets stuck
            int pick = allowed[rng.Next(allowed.Count)];
            if (vocab.IsEnd(pick) || m.TokenCount > 40)
            {
                m.Reset();
                resets++;
                continue;
            }
            Assert.True(m.Accept(pick));
        }
        Assert.True(checkedStates >= states);
    }

    private static bool BruteForceAllowed(GrammarMatcher m, GrammarVocabulary vocab, int t)
    {
        if (vocab.IsEnd(t)) return m.IsComplete;
        if (!vocab.IsEligible(t)) return false;
        var probe = (GrammarMatcher)m.Clone();
        foreach (byte b in vocab.Bytes(t))
            if (!probe.AcceptBytes([b])) return false;
        return true;
    }

    private static string Show(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b).Replace("\n", "\\n");

    [Fact]
    public void RollbackCloneAndEndTokens()
    {
        var vocab = GrammarTestVocab.Tiny;
        var tok = GrammarTestVocab.TinyTokenizer;
        var g = GrammarTestVocab.Compile("root ::= \"{\\\"a\\\": \" [0-9]+ \"}\"", vocab);
        var m = g.CreateMatcher();
        int eos = tok.EosId!.Value;
        int[] ids = tok.Encode("{\"a\": 12}");
        foreach (int id in ids.SkipLast(1)) Assert.True(m.Accept(id));
        Assert.False(m.IsComplete);
        Assert.False(m.IsAllowed(eos));
        var clone = m.Clone();
        Assert.True(m.Accept(ids[^1]));
        Assert.True(m.IsComplete);
        Assert.True(m.IsAllowed(eos));
        Assert.True(m.Accept(eos));
        Assert.True(m.IsTerminated);
        Assert.False(m.IsAllowed(ids[0]));
        m.Rollback(2);
        Assert.False(m.IsComplete);
        Assert.Equal(ids.Length - 1, m.TokenCount);
        Assert.True(clone.Accept(ids[^1]) && clone.IsComplete);
        Assert.False(m.Accept(tok.Encode("x")[0]));
        foreach (int special in new[] { tok.TokenToId("<think>")!.Value, tok.BosId!.Value })
            Assert.False(m.IsAllowed(special));
        m.Reset();
        Assert.Equal(0, m.TokenCount);
        Assert.True(m.IsAllowed(ids[0]));
    }
}
