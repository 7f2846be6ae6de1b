// grammar: compiles a JSON Schema or a GBNF grammar; prints the GBNF, or with --check tells for each text whether
// the grammar accepts it token by token through the model's tokenizer.
using System.CommandLine;
using R1Sharp.Formats;
using R1Sharp.Grammar;
using R1Sharp.Tokenization;

namespace R1Sharp.Cli;

internal static class GrammarCommand
{
    public static Command Create()
    {
        var schema = new Option<string>("--schema") { Description = "a JSON Schema file" };
        var gbnf = new Option<string>("--gbnf") { Description = "a GBNF grammar file (llama.cpp's format)" };
        var model = CliCommon.ModelOption(required: false);
        model.Description = "a GGUF model whose tokenizer --check uses (vocab-only files work)";
        var check = new Option<string>("--check") { Description = "a .jsonl file with one JSON string a line; prints for each whether the grammar accepts it" };
        var strict = new Option<bool>("--strict") { Description = "additionalProperties defaults to false (OpenAI's strict mode)" };
        var cmd = new Command("grammar", "compile a JSON Schema or GBNF grammar: print it as GBNF, or check texts against it") { schema, gbnf, model, check, strict };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string? s = r.GetValue(schema), g = r.GetValue(gbnf), m = r.GetValue(model), c = r.GetValue(check);
            if ((s is null) == (g is null)) throw new ArgumentException("give exactly one of --schema and --gbnf");
            if (c is not null && m is null) throw new ArgumentException("--check needs --model (the tokenizer to feed the texts through)");
            GrammarDefinition def;
            try
            {
                def = s is not null
                    ? JsonSchemaCompiler.Compile(File.ReadAllText(s), new JsonSchemaOptions { Strict = r.GetValue(strict) })
                    : GbnfParser.Parse(File.ReadAllText(g!));
                _ = GrammarAutomaton.Compile(def); // left recursion, empty grammars
            }
            catch (GrammarException e) { throw new FormatException($"{s ?? g}: {e.Message}"); }
            if (c is null)
            {
                Console.Out.Write(def.ToGbnf());
                return 0;
            }
            using var gguf = GgufFile.Open(m!);
            var tokenizer = new BpeTokenizer(TokenizerData.FromGgufMetadata(gguf.Metadata));
            var compiled = CompiledGrammar.Create(def, GrammarVocabulary.FromTokenizer(tokenizer));
            foreach (var (lineNo, text) in CliCommon.ReadJsonStringLines(c))
            {
                int[] ids = tokenizer.Encode(text, parseSpecial: false);
                var matcher = compiled.CreateMatcher();
                int rejectedAt = -1;
                for (int i = 0; i < ids.Length && rejectedAt < 0; i++)
                    if (!matcher.Accept(ids[i])) rejectedAt = i;
                bool accepted = rejectedAt < 0 && matcher.IsComplete;
                Console.Out.WriteLine(rejectedAt >= 0
                    ? $"{{\"line\":{lineNo},\"accepted\":false,\"tokens\":{ids.Length},\"rejected_at\":{rejectedAt}}}"
                    : $"{{\"line\":{lineNo},\"accepted\":{(accepted ? "true" : "false")},\"tokens\":{ids.Length}{(accepted ? "" : ",\"incomplete\":true")}}}");
            }
            return 0;
        }));
        return cmd;
    }
}
