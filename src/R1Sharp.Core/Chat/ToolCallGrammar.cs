// The grammar of an answer that calls tools, in the model's own call format, with each call's arguments compiled
// from its function's JSON Schema: what tool_choice "required" (any tool) or a named function forces, and, after
// the block's opener, what a strict tool's call must follow in "auto" mode.
using R1Sharp.Grammar;

namespace R1Sharp.Chat;

public static class ToolCallGrammar
{
    /// <summary>
    /// The grammar of a block of calls to <paramref name="tools"/> (only <paramref name="only"/> when given), one call
    /// when <paramref name="parallel"/> is false. <paramref name="afterOpener"/> leaves out the block's opening marker
    /// (the text a lazy grammar is triggered by: <see cref="Opener"/>). Throws <see cref="GrammarException"/>
    /// (<see cref="UnsupportedSchemaException"/>) for a parameters schema that cannot be compiled.
    /// </summary>
    public static GrammarDefinition Build(IReadOnlyList<ToolDefinition> tools, ToolCallSyntax syntax, bool parallel,
                                          string? only = null, bool afterOpener = false)
    {
        var rules = new List<KeyValuePair<string, GNode>>();
        var calls = new List<GNode>();
        var firstCalls = new List<GNode>(); // the first call of a lazy Hermes grammar, its <tool_call> already written
        for (int i = 0; i < tools.Count; i++)
        {
            var t = tools[i];
            if (only is not null && t.Name != only) continue;
            GrammarDefinition args;
            try { args = JsonSchemaCompiler.Compile(t.Parameters.GetRawText(), new JsonSchemaOptions { Strict = t.Strict }); }
            catch (UnsupportedSchemaException e) { throw new UnsupportedSchemaException(e.Keyword, $"tool '{t.Name}': {e.Message}"); }
            catch (GrammarException e) { throw new GrammarException($"tool '{t.Name}': {e.Message}"); }
            string prefix = $"tool{i}-";
            foreach (string name in args.RuleNames) rules.Add(new(prefix + name, Rename(args[name], prefix)));
            GNode argsRef = new GRef(prefix + args.Root);
            var (head, tail) = syntax switch
            {
                ToolCallSyntax.R1 => (R1ChatTemplate.CallBegin + "function" + R1ChatTemplate.ToolSep + t.Name + "\n```json\n", "\n```" + R1ChatTemplate.CallEnd),
                ToolCallSyntax.Hermes => (HermesOpen + "\n{\"name\": \"" + t.Name + "\", \"arguments\": ", "}\n</tool_call>"),
                _ => ("{\"name\": \"" + t.Name + "\", \"parameters\": ", "}"),
            };
            calls.Add(Seq(Lit(head), argsRef, Lit(tail)));
            if (syntax == ToolCallSyntax.Hermes) firstCalls.Add(Seq(Lit(head[HermesOpen.Length..]), argsRef, Lit(tail)));
        }
        if (calls.Count == 0) throw new GrammarException($"no tool named '{only}'");
        rules.Add(new("call", calls.Count == 1 ? calls[0] : new GAlt(calls)));
        GNode first = new GRef("call");
        if (afterOpener && syntax == ToolCallSyntax.Hermes)
        {
            rules.Add(new("first-call", firstCalls.Count == 1 ? firstCalls[0] : new GAlt(firstCalls)));
            first = new GRef("first-call");
        }
        else if (afterOpener && syntax != ToolCallSyntax.R1) throw new GrammarException($"{syntax} calls have no opener to wait for");
        GNode more = parallel && syntax != ToolCallSyntax.Llama3Json ? new GRepeat(Seq(Lit("\n"), new GRef("call")), 0, -1) : Seq();
        GNode body = syntax == ToolCallSyntax.R1 ? Seq(first, more, Lit(R1ChatTemplate.CallsEnd)) : Seq(first, more);
        rules.Add(new("root", syntax == ToolCallSyntax.R1 && !afterOpener ? Seq(Lit(R1ChatTemplate.CallsBegin), body) : body));
        return new GrammarDefinition(rules, "root");
    }

    private const string HermesOpen = "<tool_call>";

    /// <summary>The text that opens calls in <paramref name="syntax"/>, the trigger of a lazy grammar; null where calls have none.</summary>
    public static string? Opener(ToolCallSyntax syntax) => syntax switch
    {
        ToolCallSyntax.R1 => R1ChatTemplate.CallsBegin,
        ToolCallSyntax.Hermes => HermesOpen,
        _ => null,
    };

    private static GLit Lit(string s) => new(s);
    private static GSeq Seq(params GNode[] items) => new(items);

    // the same node with every rule reference prefixed, so several compiled schemas live in one grammar
    private static GNode Rename(GNode n, string prefix) => n switch
    {
        GRef r => new GRef(prefix + r.Name),
        GSeq s => new GSeq(s.Items.Select(i => Rename(i, prefix)).ToList()),
        GAlt a => new GAlt(a.Items.Select(i => Rename(i, prefix)).ToList()),
        GRepeat p => new GRepeat(Rename(p.Item, prefix), p.Min, p.Max),
        _ => n,
    };
}
