using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Tokenization;

public sealed class BpeLearnerTests
{
    private static readonly PreTokenizer Pre = PreTokenizer.ForName("deepseek-r1-qwen");

    [Fact]
    public void MergesTheMostFrequentPairFirstAndBreaksTiesByText()
    {
        // "ab" three times, "cd" and "xy" twice each: ab first, then cd before xy (ordinal order of "c d" < "x y")
        var r = BpeLearner.Learn(["ab ab ab cd cd xy xy"], Pre, merges: 3);
        Assert.Equal(["a b", "c d", "x y"], r.Merges.Take(3));
        Assert.Equal(256 + 3, r.Tokens.Count);
        Assert.Equal("ab", r.Tokens[256]);
    }

    [Fact]
    public void MinCountStopsAtRarePairs()
    {
        var r = BpeLearner.Learn(["ab ab q"], Pre, merges: 10, minCount: 2);
        Assert.Equal(["a b"], r.Merges);
        // with the default, pairs seen once merge too (" a" style pieces included), so more merges are found
        Assert.True(BpeLearner.Learn(["ab ab q"], Pre, merges: 10).Merges.Count > 1);
    }

    [Fact]
    public void LearnedVocabularyEncodesItsOwnCorpus()
    {
        var data = BpeLearner.WithR1Specials(BpeLearner.Learn(["the cat sat on the mat, the end"], Pre, merges: 20), "deepseek-r1-qwen");
        var tok = new BpeTokenizer(data);
        const string text = "the cat sat on the mat";
        Assert.Equal(text, tok.Decode(tok.Encode(text, addBos: false)));
        Assert.True(tok.Encode(text, addBos: false).Length < text.Length);
        Assert.Equal("<｜end▁of▁sentence｜>", tok.IdToToken(tok.EosId!.Value));
    }
}
