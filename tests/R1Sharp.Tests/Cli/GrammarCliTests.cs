// The grammar verb: GBNF out of a schema (parseable back), --check through a vocab-only GGUF's tokenizer, and
// one-line errors with exit 1 for bad schemas and grammars.
using System.Text.Json;
using R1Sharp.Formats;
using R1Sharp.Grammar;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Cli;

public sealed class GrammarCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-grammar-cli-").FullName;
    private readonly string _vocab;

    public GrammarCliTests()
    {
        _vocab = Path.Combine(_dir, "vocab.gguf");
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("qwen2"));
        foreach (var kv in TinyVocab.Build().ToGgufMetadata()) w.SetMetadata(kv.Key, kv.Value);
        w.Write(_vocab);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string name, string text)
    {
        string p = Path.Combine(_dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    [Fact]
    public void SchemaPrintsGbnfThatParsesBack()
    {
        string schema = Write("s.json", """{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}, "required": ["name"]}""");
        var r = CliRunner.Run("grammar", "--schema", schema);
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("root ::= ", r.Stdout);
        var parsed = GbnfParser.Parse(r.Stdout);
        var g = CompiledGrammar.Create(parsed, GrammarVocabulary.FromTokenizer(new BpeTokenizer(TinyVocab.Build())));
        var m = g.CreateMatcher();
        Assert.True(m.AcceptBytes("{\"name\":\"x\",\"age\":3}"u8) && m.IsComplete);
    }

    [Fact]
    public void CheckTellsPerLineWhetherTheTextIsAccepted()
    {
        string schema = Write("s.json", """{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false}""");
        string[] texts = ["{\"a\": 12}", "{\"a\": \"x\"}", "{\"a\": 1", "{\n  \"a\": -3\n}"];
        string file = Write("in.jsonl", string.Join('\n', texts.Select(t => JsonSerializer.Serialize(t))) + "\n");
        var r = CliRunner.Run("grammar", "--schema", schema, "--model", _vocab, "--check", file);
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([true, false, false, true], lines.Select(l => l.GetProperty("accepted").GetBoolean()));
        Assert.True(lines[2].GetProperty("incomplete").GetBoolean());
        Assert.True(lines[1].GetProperty("rejected_at").GetInt32() > 0);

        string gbnf = Write("g.gbnf", "root ::= \"yes\" | \"no\"\n");
        string file2 = Write("in2.jsonl", "\"yes\"\n\"nope\"\n");
        var r2 = CliRunner.Run("grammar", "--gbnf", gbnf, "--model", _vocab, "--check", file2);
        Assert.Equal(0, r2.ExitCode);
        Assert.Contains("\"accepted\":true", r2.Stdout.Split('\n')[0]);
        Assert.Contains("\"accepted\":false", r2.Stdout.Split('\n')[1]);
    }

    [Fact]
    public void BadInputIsAOneLineErrorWithExit1()
    {
        string notSchema = Write("bad.json", "{\"type\": ");
        string unsupported = Write("u.json", """{"type": "object", "patternProperties": {"^x": {}}}""");
        string badGbnf = Write("bad.gbnf", "root ::= (\"a\"\n");
        string leftRec = Write("lr.gbnf", "root ::= root \"a\" | \"a\"\n");
        foreach (var args in new[]
                 {
                     new[] { "grammar", "--schema", notSchema },
                     ["grammar", "--schema", unsupported],
                     ["grammar", "--gbnf", badGbnf],
                     ["grammar", "--gbnf", leftRec],
                     ["grammar", "--schema", Path.Combine(_dir, "missing.json")],
                     ["grammar", "--gbnf", badGbnf, "--schema", notSchema],
                     ["grammar", "--schema", unsupported, "--check", notSchema],
                 })
        {
            var r = CliRunner.Run(args);
            Assert.Equal(1, r.ExitCode);
            string err = r.Stderr.TrimEnd('\n');
            Assert.StartsWith("error: ", err);
            Assert.DoesNotContain('\n', err);
            Assert.DoesNotContain("   at ", r.Stderr);
        }
        Assert.Contains("patternProperties", CliRunner.Run("grammar", "--schema", unsupported).Stderr);
    }
}
