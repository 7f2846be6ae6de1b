// Unit tests of the tokenizer pieces that need no downloaded vocabulary: byte-level mapping, pre-tokenizer
// splits, NFC, BPE merging, the tiny R1 vocabulary, GGUF metadata round trips and streaming decoding.
using System.Text;
using R1Sharp.Formats;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Tokenization;

public sealed class ByteLevelTests
{
    [Fact]
    public void MapsEveryByteToADistinctCharAndBack()
    {
        var seen = new HashSet<char>();
        for (int b = 0; b < 256; b++)
        {
            char c = ByteLevel.ByteToChar[b];
            Assert.True(seen.Add(c));
            Assert.Equal(b, ByteLevel.CharToByte(c));
        }
        Assert.Equal('Ġ', ByteLevel.ByteToChar[' ']);
        Assert.Equal('Ċ', ByteLevel.ByteToChar['\n']);
        Assert.Equal((byte)'!', ByteLevel.VocabOrder[0]);
        Assert.Equal(-1, ByteLevel.CharToByte('€'));
    }

    [Fact]
    public void EncodesUtf8AsGpt2Does() => Assert.Equal("ĠðŁĺĢ", ByteLevel.Encode(" 😀"));
}

public sealed class PreTokenizerTests
{
    private static string[] Split(string pre, string text)
    {
        var pieces = new List<(int Start, int Length)>();
        PreTokenizer.ForName(pre).Split(text, pieces);
        Assert.Equal(text, string.Concat(pieces.Select(p => text.Substring(p.Start, p.Length))));
        return pieces.Select(p => text.Substring(p.Start, p.Length)).ToArray();
    }

    [Fact]
    public void Qwen2SplitsContractionsDigitsAndSpaces() =>
        Assert.Equal(["Hello", " World", "'s", " '", "LL", " ", "1", "2", "3", " x", "  \n", " ", " y", "!!\n"],
            Split("qwen2", "Hello World's 'LL 123 x  \n  y!!\n"));

    [Fact]
    public void Llama3GroupsDigitsByThree() =>
        Assert.Equal(["abc", " ", "123", "45", " ", "\tx", "   "], Split("llama-bpe", "abc 12345 \tx   "));

    [Fact]
    public void AstralLettersAndEmojiAreWholeCodePoints()
    {
        // U+1D400 MATHEMATICAL BOLD CAPITAL A is a letter; the emoji are symbols.
        Assert.Equal(["𝐀𝐁c", " 😀👍🏽!"], Split("qwen2", "𝐀𝐁c 😀👍🏽!"));
        Assert.Equal(["a", " 🇫🇷\u200D"], Split("qwen2", "a 🇫🇷\u200D")); // ZWJ (Cf) joins the symbol run
    }

    [Fact]
    public void DeepSeekV3SplitsDigitsCjkAndPunctuation()
    {
        Assert.Equal(["Hello", " World", "'s", " ", "123", "45", " ", "你好世界", " ", "こんにちは", ".Net", " (", "x", ")"],
            Split("deepseek-v3", "Hello World's 12345 你好世界 こんにちは.Net (x)"));
        Assert.Equal(["a", "\u200D"], Split("deepseek-v3", "a\u200D")); // an unmatched character is a piece of its own
    }

    [Fact]
    public void UnknownNameIsAnErrorNamingIt()
    {
        var e = Assert.Throws<NotSupportedException>(() => PreTokenizer.ForName("starcoder"));
        Assert.Contains("starcoder", e.Message);
    }
}

public sealed class NfcTests
{
    [Theory]
    [InlineData("e\u0301", "\u00E9")]
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]           // Hangul jamo compose
    [InlineData("\uF900", "\u8C48")]                        // CJK compatibility ideograph: singleton decomposition
    [InlineData("a\u0301\u0323", "\u1EA1\u0301")]           // reordered (dot below first), then composed
    [InlineData("\u212B", "\u00C5")]                        // ANGSTROM SIGN
    [InlineData("plain ascii", "plain ascii")]
    [InlineData("\U0001D15E", "\U0001D157\U0001D165")]       // composition exclusion stays decomposed
    [InlineData("\u0344", "\u0308\u0301")]                  // non-starter decomposition
    public void Normalizes(string input, string expected) => Assert.Equal(expected, Nfc.Normalize(input));

    [Fact]
    public void StableTextIsReturnedAsIs()
    {
        string s = "Hello, 世界! 😀";
        Assert.True(Nfc.IsStable(s));
        Assert.Same(s, Nfc.Normalize(s));
    }
}

public sealed class TinyVocabTests
{
    private static readonly TokenizerData s_data = TinyVocab.Build();
    private static readonly BpeTokenizer s_tok = new(s_data);

    [Fact]
    public void HasBytesMergesAndR1Tokens()
    {
        Assert.InRange(s_data.Tokens.Length, 512, 1024);
        Assert.Equal(256 + s_data.Merges.Length + 7, s_data.Tokens.Length);
        Assert.Equal(TinyVocab.MergeCount, s_data.Merges.Length);
        Assert.Equal("gpt2", s_data.Model);
        Assert.Equal("deepseek-r1-qwen", s_data.Pre);
        Assert.Equal(R1Vocab.BeginOfSentence, s_data.Tokens[s_data.BosId!.Value]);
        Assert.Equal(R1Vocab.EndOfSentence, s_data.Tokens[s_data.EosId!.Value]);
        Assert.True(s_data.AddBos);
        Assert.Contains("<｜Assistant｜><think>", s_data.ChatTemplate);
        foreach (var (text, type) in R1Vocab.SpecialTokens)
            Assert.Equal(type, s_data.TokenTypes[s_tok.TokenToId(text)!.Value]);
        Assert.Equal(TokenType.UserDefined, s_data.TokenTypes[s_tok.TokenToId("<think>")!.Value]);
        Assert.Equal(TokenType.Control, s_data.TokenTypes[s_tok.TokenToId("<｜User｜>")!.Value]);
        Assert.NotNull(s_tok.TokenToId("Ċ")); // llama.cpp's newline token
        Assert.All(s_data.TokenTypes.Take(s_data.Tokens.Length - 7), t => Assert.Equal(TokenType.Normal, t));
    }

    [Fact]
    public void IsDeterministic()
    {
        var again = TinyVocab.Build();
        Assert.Equal(s_data.Tokens, again.Tokens);
        Assert.Equal(s_data.Merges, again.Merges);
    }

    [Fact]
    public void LearnedCommonEnglish()
    {
        Assert.NotNull(s_tok.TokenToId("Ġthe"));
        int[] ids = s_tok.Encode("the answer");
        Assert.True(ids.Length <= 4, $"'the answer' took {ids.Length} tokens");
    }

    [Fact]
    public void ParsesSpecialTokensInText()
    {
        int user = s_tok.TokenToId(R1Vocab.User)!.Value, think = s_tok.TokenToId("<think>")!.Value;
        int[] ids = s_tok.Encode("<｜User｜>hi<｜Assistant｜><think>\n", addBos: true);
        Assert.Equal(s_tok.BosId, ids[0]);
        Assert.Equal(user, ids[1]);
        Assert.Contains(think, ids);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜><think>\n", s_tok.Decode(ids));
        Assert.Equal("hi<think>\n", s_tok.Decode(ids, skipControl: true));

        // Without parseSpecial control tokens are text, user-defined ones (<think>) still match, as in llama.cpp.
        int[] plain = s_tok.Encode("<｜User｜><think>", parseSpecial: false);
        Assert.DoesNotContain(user, plain);
        Assert.Equal(think, plain[^1]);
        Assert.Equal("<｜User｜><think>", s_tok.Decode(plain));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Hello world!\r\n\tTabs  and   spaces   ")]
    [InlineData("数学 ∑ x² = 😀👩‍👩‍👧 🇯🇵 e\u0301")]
    [InlineData("\U0010FFFD\U0001F600 \u0000\u007F")]
    public void DecodeRoundTrips(string text)
    {
        string expected = Nfc.Normalize(text);
        Assert.Equal(expected, s_tok.Decode(s_tok.Encode(text)));
    }

    [Fact]
    public void HeapAndNaiveMergesAgree()
    {
        var rng = new Random(1234);
        const string alphabet = "the quick brown fox a e i o u th er in an";
        for (int n = 0; n < 300; n++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(1, 200);
            for (int i = 0; i < len; i++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            byte[] bytes = Encoding.UTF8.GetBytes(sb.ToString());
            var naive = new List<int>();
            var heap = new List<int>();
            s_tok.MergeBytes(bytes, naive, naiveMax: int.MaxValue);
            s_tok.MergeBytes(bytes, heap, naiveMax: 0);
            Assert.Equal(naive, heap);
        }
    }
}

public sealed class StreamingDecoderTests
{
    private static readonly BpeTokenizer s_tok = new(TinyVocab.Build());

    [Theory]
    [InlineData("héllo wörld")]
    [InlineData("世界 😀👍🏽 🇯🇵 done")]
    [InlineData("<｜User｜>数学<think>\n∑</think>")]
    public void NeverSplitsACharacter(string text)
    {
        int[] ids = s_tok.Encode(text);
        var dec = s_tok.CreateStreamingDecoder();
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            string piece = dec.Push(id);
            Assert.DoesNotContain('\uFFFD', piece);
            if (piece.Length > 0) Assert.False(char.IsHighSurrogate(piece[^1]), "a surrogate pair was split");
            sb.Append(piece);
        }
        sb.Append(dec.Flush());
        Assert.Equal(text, sb.ToString());
        Assert.Equal(s_tok.Decode(ids), sb.ToString());
    }

    [Fact]
    public void BytesSplitAcrossTokensWaitForTheirCharacter()
    {
        // "€" is E2 82 AC: three byte tokens.
        int[] ids = [.. "€"u8.ToArray().Select(b => s_tok.TokenToId(ByteLevel.ByteToChar[b].ToString())!.Value)];
        var dec = s_tok.CreateStreamingDecoder();
        Assert.Equal("", dec.Push(ids[0]));
        Assert.Equal("", dec.Push(ids[1]));
        Assert.Equal("€", dec.Push(ids[2]));
        Assert.Equal("", dec.Flush());
        Assert.Equal("", dec.Push(ids[0]));
        Assert.Equal("\uFFFD", dec.Flush()); // an unfinished character at the end
    }
}

public sealed class TokenizerDataTests
{
    private static Dictionary<string, GgufValue> Metadata(TokenizerData d) => d.ToGgufMetadata().ToDictionary();

    [Fact]
    public void GgufMetadataRoundTrips()
    {
        var d = TinyVocab.Build();
        var md = Metadata(d);
        Assert.Equal("gpt2", md["tokenizer.ggml.model"].Value);
        Assert.Equal(GgufValueType.UInt32, md["tokenizer.ggml.bos_token_id"].Type);
        Assert.Equal(GgufValueType.Int32, md["tokenizer.ggml.token_type"].ElementType);
        var back = TokenizerData.FromGgufMetadata(md);
        Assert.Equal(d.Tokens, back.Tokens);
        Assert.Equal(d.TokenTypes, back.TokenTypes);
        Assert.Equal(d.Merges, back.Merges);
        Assert.Equal((d.Model, d.Pre, d.BosId, d.EosId, d.PadId, d.AddBos, d.ChatTemplate),
            (back.Model, back.Pre, back.BosId, back.EosId, back.PadId, back.AddBos, back.ChatTemplate));
    }

    [Theory]
    [InlineData("tokenizer.ggml.model")]
    [InlineData("tokenizer.ggml.pre")]
    [InlineData("tokenizer.ggml.tokens")]
    [InlineData("tokenizer.ggml.merges")]
    public void MissingKeyIsNamed(string key)
    {
        var md = Metadata(TinyVocab.Build());
        md.Remove(key);
        var e = Assert.Throws<InvalidDataException>(() => TokenizerData.FromGgufMetadata(md));
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void BadValuesAreNamed()
    {
        var md = Metadata(TinyVocab.Build());
        md["tokenizer.ggml.pre"] = GgufValue.Of("my-new-pre");
        Assert.Contains("my-new-pre", Assert.Throws<InvalidDataException>(() => TokenizerData.FromGgufMetadata(md)).Message);
        md = Metadata(TinyVocab.Build());
        md["tokenizer.ggml.model"] = GgufValue.Of("llama");
        Assert.Contains("tokenizer.ggml.model", Assert.Throws<InvalidDataException>(() => TokenizerData.FromGgufMetadata(md)).Message);
        md = Metadata(TinyVocab.Build());
        md["tokenizer.ggml.bos_token_id"] = GgufValue.Of(100000u);
        Assert.Contains("bos_token_id", Assert.Throws<InvalidDataException>(() => TokenizerData.FromGgufMetadata(md)).Message);
        md = Metadata(TinyVocab.Build());
        md["tokenizer.ggml.token_type"] = GgufValue.Of(new int[3]);
        Assert.Contains("token_type", Assert.Throws<InvalidDataException>(() => TokenizerData.FromGgufMetadata(md)).Message);
    }

    [Fact]
    public void OtherPreTokenizersBuildTinyVocabs()
    {
        foreach (string pre in new[] { "qwen2", "llama-bpe", "deepseek-v3" })
        {
            var tok = new BpeTokenizer(TinyVocab.Build(pre));
            Assert.Equal("1234 apples", tok.Decode(tok.Encode("1234 apples")));
        }
    }
}

public sealed class TokenizerMemoryTests
{
    [Fact]
    public void AHugeTextDoesNotLeaveItsPieceListOnTheThread()
    {
        // found by the soak run: each pool thread that split a 1 MB prompt kept an 8 MB list of its pieces for good
        var tok = new BpeTokenizer(TinyVocab.Build("qwen2"));
        var ids = tok.Encode(string.Concat(Enumerable.Repeat("1725 42 ", 20_000)));
        Assert.True(ids.Length >= 40_000);
        Assert.InRange(BpeTokenizer.KeptPieceCapacity, 0, BpeTokenizer.MaxKeptPieces);
        // a small text keeps its list for the next one
        tok.Encode("17 + 25 = 42");
        Assert.InRange(BpeTokenizer.KeptPieceCapacity, 1, BpeTokenizer.MaxKeptPieces);
    }
}
