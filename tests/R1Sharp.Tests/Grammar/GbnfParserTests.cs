// The GBNF parser and printer: llama.cpp's syntax (alternation, groups, repetition, classes, escapes, comments),
// printing back to text that parses to the same grammar, and one-line errors for bad input.
using R1Sharp.Grammar;

namespace R1Sharp.Tests.Grammar;

public sealed class GbnfParserTests
{
    private static bool Accepts(string gbnf, string text) =>
        GrammarTestVocab.AcceptsText(GrammarTestVocab.Compile(gbnf, GrammarTestVocab.Tiny), text);

    [Theory]
    [InlineData("root ::= \"ab\" | \"c\"", "ab", true)]
    [InlineData("root ::= \"ab\" | \"c\"", "c", true)]
    [InlineData("root ::= \"ab\" | \"c\"", "a", false)]
    [InlineData("root ::= \"ab\" | \"c\"", "abc", false)]
    [InlineData("root ::= [a-c]+ \"!\"", "abcab!", true)]
    [InlineData("root ::= [a-c]+ \"!\"", "!", false)]
    [InlineData("root ::= [^a-c]*", "xyz\u00e9\u4e2d\U0001F600", true)]
    [InlineData("root ::= [^a-c]*", "xaz", false)]
    [InlineData("root ::= x{2,3}\nx ::= \"ab\"", "ababab", true)]
    [InlineData("root ::= x{2,3}\nx ::= \"ab\"", "ab", false)]
    [InlineData("root ::= x{2,3}\nx ::= \"ab\"", "abababab", false)]
    [InlineData("root ::= \"a\"{2,}", "aaaaa", true)]
    [InlineData("root ::= \"a\"{2,}", "a", false)]
    [InlineData("root ::= \"a\"{,2}", "", true)]
    [InlineData("root ::= \"a\"{,2}", "aaa", false)]
    [InlineData("root ::= (\"a\" | \"b\")? \"c\"", "c", true)]
    [InlineData("root ::= (\"a\" | \"b\")? \"c\"", "bc", true)]
    [InlineData("root ::= . .", "\u00e9\U0001F600", true)]
    [InlineData("root ::= . .", "a", false)]
    [InlineData("root ::= \"\\x41\\u00e9\\U0001F600\\n\\t\\\"\\\\\"", "A\u00e9\U0001F600\n\t\"\\", true)]
    [InlineData("root ::= [\\x00-\\x7F\\u0100-\\u017F]+ # comment\n# another\n", "a\u0101", true)]
    [InlineData("root ::= [\\x00-\\x7F\\u0100-\\u017F]+", "\u00e9", false)]
    [InlineData("root ::= [\\]\\-\\\\]+", "]-\\", true)]
    [InlineData("root ::= (\n  \"a\"\n  \"b\"\n) |\n  \"c\"", "ab", true)]
    [InlineData("root ::= e\ne ::= t (\"+\" t)*\nt ::= [0-9]+ | \"(\" e \")\"", "(1+2)+3", true)]
    [InlineData("root ::= e\ne ::= t (\"+\" t)*\nt ::= [0-9]+ | \"(\" e \")\"", "(1+2", false)]
    public void AcceptsWhatTheGrammarSays(string gbnf, string text, bool expected) => Assert.Equal(expected, Accepts(gbnf, text));

    [Fact]
    public void JsonGrammarAcceptsJsonAndRejectsBrokenJson()
    {
        var g = GrammarTestVocab.Compile(GrammarTestVocab.JsonGbnf, GrammarTestVocab.Tiny);
        Assert.True(GrammarTestVocab.AcceptsText(g, "{\"a\": [1, 2.5e3, \"x\\u00e9\u4e2d\", {\"b\": null}], \"c\": true}"));
        Assert.True(GrammarTestVocab.AcceptsText(g, "{\n  \"a\": -0.5\n}"));
        Assert.False(GrammarTestVocab.AcceptsText(g, "{\"a\" 1}"));
        Assert.False(GrammarTestVocab.AcceptsText(g, "{\"a\": 01}"));
        Assert.False(GrammarTestVocab.AcceptsText(g, "{\"a\": \"\n\"}"));
        Assert.False(GrammarTestVocab.AcceptsText(g, "{\"a\": 1"));
    }

    [Theory]
    [InlineData(GrammarTestVocab.JsonGbnf)]
    [InlineData("root ::= [^\"\\\\\\x00-\\x1F]{0,5} (\"x\" | [\\u4e00-\\u9fff])* \"\\u00e9\"? .")]
    [InlineData("root ::= (a | \"b\"+)? [a-z\\]\\-] \"\"\na ::= \"q\"{3} \"r\"{1,} \"s\"{2,4}")]
    public void PrintedGrammarParsesToTheSameGrammar(string gbnf)
    {
        var g1 = GbnfParser.Parse(gbnf);
        string printed = g1.ToGbnf();
        var g2 = GbnfParser.Parse(printed);
        Assert.Equal(printed, g2.ToGbnf());
        foreach (string name in g1.RuleNames) Assert.Equal(Canon(g1[name]), Canon(g2[name]));
    }

    // Structural text of a node: single-item sequences and alternations unwrapped, nested sequences flattened.
    private static string Canon(GNode n) => n switch
    {
        GSeq s when s.Items.Count == 1 => Canon(s.Items[0]),
        GSeq s => "(" + string.Join(" ", Flatten(s).Select(Canon)) + ")",
        GAlt a when a.Items.Count == 1 => Canon(a.Items[0]),
        GAlt a => "(" + string.Join("|", a.Items.Select(Canon)) + ")",
        GLit { Text: "" } => "()",
        GLit l => "\"" + l.Text + "\"",
        GClass c => (c.Negated ? "[^" : "[") + string.Join(",", c.Ranges.Select(r => $"{r.Lo}-{r.Hi}")) + "]",
        GRef r => r.Name,
        GRepeat p => Canon(p.Item) + "{" + p.Min + "," + p.Max + "}",
        _ => "?",
    };

    private static IEnumerable<GNode> Flatten(GSeq s) => s.Items.SelectMany(i => i is GSeq inner ? Flatten(inner) : [i]);

    [Theory]
    [InlineData("root ::= \"a", "unterminated string")]
    [InlineData("root ::= [a-", "unterminated character class")]
    [InlineData("root ::= (\"a\"", "expected ')'")]
    [InlineData("root ::= x", "undefined rule 'x'")]
    [InlineData("rot ::= \"a\"", "no 'root' rule")]
    [InlineData("root ::= \"a\"{3,2}", "max < min")]
    [InlineData("root ::= \"\\q\"", "unknown escape")]
    [InlineData("root ::= root \"a\" | \"b\"", "left-recursive")]
    [InlineData("root ::= \"a\" root", "matches nothing")]
    [InlineData("root ::= \"a\"\nroot ::= \"b\"", "defined twice")]
    [InlineData("root ::= \"a\" ::=", "")]
    public void BadGrammarsGetOneLineErrors(string gbnf, string expected)
    {
        var e = Assert.ThrowsAny<GrammarException>(() => GrammarAutomaton.Compile(GbnfParser.Parse(gbnf)));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
