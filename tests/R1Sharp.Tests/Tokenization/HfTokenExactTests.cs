// Token-exact comparison with Hugging Face: every corpus string must encode to the same ids as the official
// JS port of tokenizers gives (see OracleCache), for Qwen2.5, R1-Distill-Qwen, DeepSeek-V3 and Llama 3.1.
using System.Text;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Tokenization;

public sealed class HfTokenExactTests
{
    private static readonly Lazy<TokenizerData> s_qwen = new(() => Load("tokenizer-qwen2_5"));
    private static readonly Lazy<TokenizerData> s_deepseek = new(() => Load("tokenizer-deepseek_v3"));
    private static readonly Lazy<TokenizerData> s_llama = new(() => Load("tokenizer-llama3_1"));
    private static readonly Lazy<Dictionary<string, BpeTokenizer>> s_tokenizers = new(() => new()
    {
        ["qwen2_5"] = new BpeTokenizer(s_qwen.Value),
        ["r1_distill_qwen"] = new BpeTokenizer(R1Vocab.ApplyDistillQwenOverlay(s_qwen.Value)),
        ["deepseek_v3"] = new BpeTokenizer(s_deepseek.Value),
        ["llama3_1"] = new BpeTokenizer(s_llama.Value),
    });

    private static TokenizerData Load(string package)
    {
        string dir = OracleCache.ModelsDir(package);
        return TokenizerData.FromHuggingFace(Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, "tokenizer_config.json"));
    }

    public static TheoryData<string> Names => ["qwen2_5", "r1_distill_qwen", "deepseek_v3", "llama3_1"];

    [Theory]
    [MemberData(nameof(Names))]
    public void CorpusEncodesExactlyAsHuggingFace(string name)
    {
        var oracle = OracleCache.Instance;
        var tok = s_tokenizers.Value[name];
        int[][] expected = oracle.Expected[name];
        Assert.Equal(oracle.Corpus.Length, expected.Length);
        Assert.True(oracle.Corpus.Length >= 500);
        var report = new StringBuilder();
        int failures = 0;
        for (int i = 0; i < oracle.Corpus.Length; i++)
        {
            int[] actual = tok.Encode(oracle.Corpus[i]);
            if (actual.AsSpan().SequenceEqual(expected[i])) continue;
            if (++failures <= 10)
                report.AppendLine($"#{i} {Escape(oracle.Corpus[i])}\n  hf:   {Show(tok, expected[i])}\n  ours: {Show(tok, actual)}");
        }
        Assert.True(failures == 0, $"{name}: {failures} of {oracle.Corpus.Length} strings differ from Hugging Face\n{report}");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void CorpusDecodesBack(string name)
    {
        var tok = s_tokenizers.Value[name];
        foreach (string s in OracleCache.Instance.Corpus)
        {
            string expected = tok.PreTokenizer.NormalizeNfc ? Nfc.Normalize(s) : s;
            Assert.Equal(expected, tok.Decode(tok.Encode(s)));
        }
    }

    [Fact]
    public void LoadsHuggingFaceMetadata()
    {
        Assert.Equal("qwen2", s_qwen.Value.Pre);
        Assert.Equal(151665, s_qwen.Value.Tokens.Length);
        Assert.Equal(151643, s_qwen.Value.BosId); // no bos in Qwen2.5: <|endoftext|> stands in, as convert_hf_to_gguf.py does
        Assert.Equal(151645, s_qwen.Value.EosId);
        Assert.False(s_qwen.Value.AddBos);
        Assert.Equal(TokenType.Control, s_qwen.Value.TokenTypes[151659]); // <|fim_prefix|>: not special but looks special
        Assert.Equal(TokenType.UserDefined, s_qwen.Value.TokenTypes[151657]); // <tool_call>

        Assert.Equal("deepseek-v3", s_deepseek.Value.Pre);
        Assert.Equal((0, 1, true), (s_deepseek.Value.BosId, s_deepseek.Value.EosId, s_deepseek.Value.AddBos));

        Assert.Equal("llama-bpe", s_llama.Value.Pre);
        Assert.Equal((128000, 128009, true), (s_llama.Value.BosId, s_llama.Value.EosId, s_llama.Value.AddBos));
        Assert.Equal(280147, s_llama.Value.Merges.Length);
    }

    [Fact]
    public void R1DistillQwenOverlayHasTheR1Ids()
    {
        var tok = s_tokenizers.Value["r1_distill_qwen"];
        Assert.Equal(151643, tok.TokenToId("<｜end▁of▁sentence｜>"));
        Assert.Equal(151644, tok.TokenToId("<｜User｜>"));
        Assert.Equal(151645, tok.TokenToId("<｜Assistant｜>"));
        Assert.Equal(151646, tok.TokenToId("<｜begin▁of▁sentence｜>"));
        Assert.Equal(151647, tok.TokenToId("<|EOT|>"));
        Assert.Equal(151648, tok.TokenToId("<think>"));
        Assert.Equal(151649, tok.TokenToId("</think>"));
        Assert.Equal((151646, 151643), (tok.BosId, tok.EosId));
        Assert.Equal("deepseek-r1-qwen", tok.Data.Pre);
        Assert.Equal(151650, tok.TokenToId("<|quad_start|>")); // the rest of Qwen2.5's added tokens stay
        int[] ids = tok.Encode("<｜User｜>What is 1+1?<｜Assistant｜><think>\n", addBos: true);
        Assert.Equal([151646, 151644], ids[..2]);
        Assert.Equal([151645, 151648, 198], ids[^3..]);
        Assert.True(tok.IsControl(151644));
        Assert.False(tok.IsControl(151648));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void GgufMetadataRoundTripKeepsTheTokenization(string name)
    {
        var tok = s_tokenizers.Value[name];
        var back = new BpeTokenizer(TokenizerData.FromGgufMetadata(tok.Data.ToGgufMetadata().ToDictionary()));
        foreach (string s in OracleCache.Instance.Corpus.Take(200))
            Assert.Equal(tok.Encode(s), back.Encode(s));
    }

    [Fact]
    public void StreamingDecodeOfRealTokensNeverSplitsACharacter()
    {
        var tok = s_tokenizers.Value["llama3_1"]; // its vocabulary splits emoji and CJK into partial-byte tokens
        foreach (string s in OracleCache.Instance.Corpus)
        {
            int[] ids = tok.Encode(s);
            var dec = tok.CreateStreamingDecoder();
            var sb = new StringBuilder();
            foreach (int id in ids)
            {
                string piece = dec.Push(id);
                if (piece.Length > 0) Assert.False(char.IsHighSurrogate(piece[^1]));
                sb.Append(piece);
            }
            sb.Append(dec.Flush());
            Assert.Equal(s, sb.ToString());
        }
    }

    private static string Show(BpeTokenizer tok, int[] ids) =>
        string.Join(" ", ids.Select(id => $"{id}:{(id < tok.VocabSize ? tok.IdToToken(id) : "?")}"));

    private static string Escape(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var r in s.EnumerateRunes())
            sb.Append(r.Value is < 0x20 or 0x7f or 0x85 or 0xa0 or 0xfeff or (>= 0x2000 and <= 0x200f) or 0x2028 or 0x2029 or 0x3000
                ? $"\\u{r.Value:X4}" : r.ToString());
        return sb.Append('"').ToString();
    }
}
