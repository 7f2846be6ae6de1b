// Vocabularies for the grammar tests: the Qwen2.5 tokenizer (151,665 tokens, from the tokenizer oracle's npm
// cache) and the tiny synthetic vocabulary.
using R1Sharp.Grammar;
using R1Sharp.Tests.Tokenization;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Grammar;

internal static class GrammarTestVocab
{
    private static readonly Lazy<BpeTokenizer> s_qwen = new(() =>
    {
        string dir = OracleCache.ModelsDir("tokenizer-qwen2_5");
        return new BpeTokenizer(TokenizerData.FromHuggingFace(Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, "tokenizer_config.json")));
    });
    private static readonly Lazy<GrammarVocabulary> s_qwenVocab = new(() => GrammarVocabulary.FromTokenizer(s_qwen.Value));
    private static readonly Lazy<BpeTokenizer> s_tiny = new(() => new BpeTokenizer(TinyVocab.Build()));
    private static readonly Lazy<GrammarVocabulary> s_tinyVocab = new(() => GrammarVocabulary.FromTokenizer(s_tiny.Value));

    public static BpeTokenizer QwenTokenizer => s_qwen.Value;
    public static GrammarVocabulary Qwen => s_qwenVocab.Value;
    public static BpeTokenizer TinyTokenizer => s_tiny.Value;
    public static GrammarVocabulary Tiny => s_tinyVocab.Value;

    public static CompiledGrammar Compile(string gbnf, GrammarVocabulary vocab) => CompiledGrammar.Create(GbnfParser.Parse(gbnf), vocab);

    /// <summary>Whether the matcher accepts the text fed as raw bytes and is complete after it.</summary>
    public static bool AcceptsText(CompiledGrammar g, string text)
    {
        var m = g.CreateMatcher();
        return m.AcceptBytes(System.Text.Encoding.UTF8.GetBytes(text)) && m.IsComplete;
    }

    public const string JsonGbnf = """
        # JSON, as llama.cpp's grammars/json.gbnf writes it
        root   ::= object
        value  ::= object | array | string | number | ("true" | "false" | "null") ws

        object ::=
          "{" ws (
                    string ":" ws value
            ("," ws string ":" ws value)*
          )? "}" ws

        array  ::=
          "[" ws (
                    value
            ("," ws value)*
          )? "]" ws

        string ::=
          "\"" (
            [^"\\\x7F\x00-\x1F] |
            "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
          )* "\"" ws

        number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

        # Optional space: by convention, applied in this grammar after literal chars when allowed
        ws ::= | " " | "\n" [ \t]{0,20}
        """;
}
