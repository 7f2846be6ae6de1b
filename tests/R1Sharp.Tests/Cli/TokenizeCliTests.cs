// The tokenize verb on a vocab-only GGUF (no tensors): ids as JSON, special tokens parsed, --file as JSON lines.
using System.Text.Json;
using R1Sharp.Formats;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Cli;

public sealed class TokenizeCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-tok-cli-").FullName;
    private readonly string _vocab;
    private readonly BpeTokenizer _tokenizer;

    public TokenizeCliTests()
    {
        var data = TinyVocab.Build();
        _tokenizer = new BpeTokenizer(data);
        _vocab = Path.Combine(_dir, "vocab.gguf");
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("qwen2"));
        foreach (var kv in data.ToGgufMetadata()) w.SetMetadata(kv.Key, kv.Value);
        w.Write(_vocab);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void TextGivesTheTokenizerIdsWithSpecialTokensParsed()
    {
        const string text = "<｜User｜>What is 17+25?<｜Assistant｜><think>\n";
        var r = CliRunner.Run("tokenize", "--model", _vocab, "--text", text);
        Assert.Equal(0, r.ExitCode);
        var ids = JsonSerializer.Deserialize<int[]>(r.Stdout)!;
        Assert.Equal(_tokenizer.Encode(text), ids);
        Assert.Equal(_tokenizer.TokenToId("<｜User｜>"), ids[0]);

        var withBos = JsonSerializer.Deserialize<int[]>(CliRunner.Run("tokenize", "--model", _vocab, "--text", text, "--bos").Stdout)!;
        Assert.Equal(_tokenizer.BosId, withBos[0]);
        Assert.Equal(ids, withBos[1..]);
    }

    [Fact]
    public void FileGivesOneArrayPerLine()
    {
        string[] texts = ["hello world", "emoji 🙂 and 中文", "  spaces\tand\nnewlines "];
        string file = Path.Combine(_dir, "in.jsonl");
        File.WriteAllLines(file, texts.Select(t => JsonSerializer.Serialize(t)));
        var r = CliRunner.Run("tokenize", "--model", _vocab, "--file", file);
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(texts.Length, lines.Length);
        for (int i = 0; i < texts.Length; i++) Assert.Equal(_tokenizer.Encode(texts[i]), JsonSerializer.Deserialize<int[]>(lines[i]));
    }

    [Fact]
    public void BadInputIsAOneLineError()
    {
        string bad = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(bad, "not json\n");
        foreach (var args in new[]
        {
            new[] { "tokenize", "--model", _vocab, "--file", bad },
            new[] { "tokenize", "--model", _vocab },
            new[] { "tokenize", "--model", Path.Combine(_dir, "missing.gguf"), "--text", "x" },
        })
        {
            var r = CliRunner.Run(args);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: ", r.Stderr);
        }
    }
}
