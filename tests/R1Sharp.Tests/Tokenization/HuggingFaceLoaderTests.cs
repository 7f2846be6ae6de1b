// TokenizerData.FromHuggingFace on small hand-made tokenizer.json files: both merge formats, added tokens,
// pre-tokenizer detection and its errors. Also: one tokenizer shared by many threads.
using System.Text.Json.Nodes;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Tokenization;

public sealed class HuggingFaceLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-hf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // TinyVocab written as a Hugging Face tokenizer.json (+ tokenizer_config.json).
    private (string Json, string Config) Write(TokenizerData d, bool pairMerges, JsonNode preTokenizer)
    {
        var vocab = new JsonObject();
        var added = new JsonArray();
        for (int i = 0; i < d.Tokens.Length; i++)
        {
            if (d.TokenTypes[i] == TokenType.Normal) { vocab[d.Tokens[i]] = i; continue; }
            added.Add(new JsonObject
            {
                ["id"] = i, ["content"] = d.Tokens[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = d.TokenTypes[i] == TokenType.Control,
            });
        }
        var merges = new JsonArray();
        foreach (string m in d.Merges)
            merges.Add(pairMerges ? new JsonArray(m[..m.IndexOf(' ')], m[(m.IndexOf(' ') + 1)..]) : JsonValue.Create(m));
        var json = new JsonObject
        {
            ["version"] = "1.0", ["added_tokens"] = added, ["normalizer"] = null, ["pre_tokenizer"] = preTokenizer,
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
        var config = new JsonObject
        {
            ["add_bos_token"] = true, ["bos_token"] = new JsonObject { ["content"] = R1Vocab.BeginOfSentence },
            ["eos_token"] = R1Vocab.EndOfSentence, ["pad_token"] = null, ["chat_template"] = "{{ bos_token }}",
        };
        string jp = Path.Combine(_dir, $"tokenizer{(pairMerges ? 1 : 0)}.json"), cp = Path.Combine(_dir, "tokenizer_config.json");
        File.WriteAllText(jp, json.ToJsonString());
        File.WriteAllText(cp, config.ToJsonString());
        return (jp, cp);
    }

    private static JsonNode Split(params string[] regexes)
    {
        var list = new JsonArray();
        foreach (string r in regexes)
            list.Add(new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = r }, ["behavior"] = "Isolated", ["invert"] = false });
        list.Add(new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false });
        return new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = list };
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsStringAndPairMerges(bool pairMerges)
    {
        var tiny = TinyVocab.Build("qwen2");
        var (json, config) = Write(tiny, pairMerges, Split(TokenizerData.Qwen2Regex));
        var d = TokenizerData.FromHuggingFace(json, config);
        Assert.Equal("qwen2", d.Pre);
        Assert.Equal(tiny.Tokens, d.Tokens);
        Assert.Equal(tiny.TokenTypes, d.TokenTypes);
        Assert.Equal(tiny.Merges, d.Merges);
        Assert.Equal((tiny.BosId, tiny.EosId, true, "{{ bos_token }}"), (d.BosId, d.EosId, d.AddBos, d.ChatTemplate));
        Assert.Null(d.PadId);
    }

    [Fact]
    public void DetectsEachKnownPreTokenizer()
    {
        var tiny = TinyVocab.Build();
        var (json, config) = Write(tiny, false, Split(TokenizerData.Llama3Regex));
        Assert.Equal("llama-bpe", TokenizerData.FromHuggingFace(json, config).Pre);
        (json, config) = Write(tiny, false, Split(TokenizerData.DeepSeekV3Regexes));
        Assert.Equal("deepseek-v3", TokenizerData.FromHuggingFace(json, config).Pre);
    }

    [Fact]
    public void UnknownRegexIsAnErrorUnlessNamed()
    {
        var (json, config) = Write(TinyVocab.Build(), false, Split(@"\w+|\s+"));
        var e = Assert.Throws<InvalidDataException>(() => TokenizerData.FromHuggingFace(json, config));
        Assert.Contains(@"\w+|\s+", e.Message);
        Assert.Equal("qwen2", TokenizerData.FromHuggingFace(json, config, pre: "qwen2").Pre);
    }

    [Fact]
    public void NoByteLevelIsAnError()
    {
        var (json, _) = Write(TinyVocab.Build(), false, new JsonObject { ["type"] = "Whitespace" });
        Assert.Throws<InvalidDataException>(() => TokenizerData.FromHuggingFace(json, null));
    }

    [Fact]
    public void OneTokenizerServesManyThreads()
    {
        var data = TinyVocab.Build();
        var tok = new BpeTokenizer(data);
        var reference = new BpeTokenizer(data);
        string[] texts = [.. Enumerable.Range(0, 400).Select(i => $"Thread test {i}: the answer is {i * 37} 你好 😀 <think>{i}</think>\n")];
        int[][] expected = [.. texts.Select(t => reference.Encode(t))];
        Parallel.For(0, texts.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            Assert.Equal(expected[i % texts.Length], tok.Encode(texts[i % texts.Length])));
    }
}
