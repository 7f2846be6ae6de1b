// The grammar representation shared by the GBNF parser and the JSON Schema compiler: named rules over Unicode
// code points (llama.cpp's GBNF model), printable back as GBNF. GrammarAutomaton lowers it to bytes.
using System.Globalization;
using System.Text;

namespace R1Sharp.Grammar;

/// <summary>One node of a rule's right-hand side.</summary>
public abstract record GNode;

/// <summary>The nodes in order.</summary>
public sealed record GSeq(IReadOnlyList<GNode> Items) : GNode;

/// <summary>Any one of the nodes.</summary>
public sealed record GAlt(IReadOnlyList<GNode> Items) : GNode;

/// <summary>A literal text (code points).</summary>
public sealed record GLit(string Text) : GNode;

/// <summary>One code point in the inclusive ranges (or, when negated, outside them). Surrogates are never matched.</summary>
public sealed record GClass(IReadOnlyList<(int Lo, int Hi)> Ranges, bool Negated) : GNode
{
    public static readonly GClass Any = new([], true);
}

/// <summary>A reference to a named rule.</summary>
public sealed record GRef(string Name) : GNode;

/// <summary>Item repeated Min to Max times (Max -1: unbounded).</summary>
public sealed record GRepeat(GNode Item, int Min, int Max) : GNode;

/// <summary>A grammar: named rules and the start rule's name.</summary>
public sealed class GrammarDefinition
{
    private readonly Dictionary<string, GNode> _rules;
    private readonly List<string> _order;

    public GrammarDefinition(IEnumerable<KeyValuePair<string, GNode>> rules, string root = "root")
    {
        _rules = new Dictionary<string, GNode>(StringComparer.Ordinal);
        _order = [];
        foreach (var (name, node) in rules)
        {
            if (!_rules.TryAdd(name, node)) throw new GrammarException($"rule '{name}' is defined twice");
            _order.Add(name);
        }
        Root = root;
        if (!_rules.ContainsKey(root)) throw new GrammarException($"the grammar has no '{root}' rule");
        foreach (var (name, node) in _rules)
            foreach (string r in Refs(node))
                if (!_rules.ContainsKey(r)) throw new GrammarException($"rule '{name}' refers to undefined rule '{r}'");
    }

    public string Root { get; }
    public IReadOnlyList<string> RuleNames => _order;
    public GNode this[string name] => _rules[name];
    public bool HasRule(string name) => _rules.ContainsKey(name);

    private static IEnumerable<string> Refs(GNode n)
    {
        switch (n)
        {
            case GRef r: yield return r.Name; break;
            case GSeq s: foreach (var i in s.Items) foreach (var x in Refs(i)) yield return x; break;
            case GAlt a: foreach (var i in a.Items) foreach (var x in Refs(i)) yield return x; break;
            case GRepeat p: foreach (var x in Refs(p.Item)) yield return x; break;
        }
    }

    /// <summary>The grammar as GBNF text (llama.cpp's format), root rule first.</summary>
    public string ToGbnf()
    {
        var sb = new StringBuilder();
        foreach (string name in _order.OrderBy(n => n == Root ? 0 : 1))
        {
            sb.Append(name).Append(" ::= ");
            Print(sb, _rules[name], 0);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    // prec: 0 = alternation allowed, 1 = inside a sequence, 2 = operand of a repetition
    private static void Print(StringBuilder sb, GNode n, int prec)
    {
        switch (n)
        {
            case GAlt a when a.Items.Count == 0:
                sb.Append("[^\\x00-\\U0010FFFF]"); // matches nothing
                break;
            case GAlt a:
                if (prec > 0) sb.Append('(');
                for (int i = 0; i < a.Items.Count; i++)
                {
                    if (i > 0) sb.Append(" | ");
                    Print(sb, a.Items[i], 1);
                }
                if (prec > 0) sb.Append(')');
                break;
            case GSeq s when s.Items.Count == 0:
                sb.Append("\"\"");
                break;
            case GSeq s:
                if (prec > 1 && s.Items.Count > 1) sb.Append('(');
                for (int i = 0; i < s.Items.Count; i++)
                {
                    if (i > 0) sb.Append(' ');
                    Print(sb, s.Items[i], s.Items.Count > 1 ? 1 : prec);
                }
                if (prec > 1 && s.Items.Count > 1) sb.Append(')');
                break;
            case GLit l:
                if (prec > 1 && CharCount(l.Text) > 1) { sb.Append('('); PrintLit(sb, l.Text); sb.Append(')'); }
                else PrintLit(sb, l.Text);
                break;
            case GClass c:
                PrintClass(sb, c);
                break;
            case GRef r:
                sb.Append(r.Name);
                break;
            case GRepeat p:
                Print(sb, p.Item, 2);
                sb.Append((p.Min, p.Max) switch
                {
                    (0, -1) => "*",
                    (1, -1) => "+",
                    (0, 1) => "?",
                    (var m, -1) => $"{{{m},}}",
                    var (m, x) when m == x => $"{{{m}}}",
                    var (m, x) => $"{{{m},{x}}}",
                });
                break;
            default: throw new InvalidOperationException(n.GetType().Name);
        }
    }

    private static int CharCount(string s) => s.EnumerateRunes().Count();

    private static void PrintLit(StringBuilder sb, string text)
    {
        sb.Append('"');
        foreach (Rune r in text.EnumerateRunes())
        {
            int c = r.Value;
            if (c == '"') sb.Append("\\\"");
            else if (c == '\\') sb.Append("\\\\");
            else AppendChar(sb, c);
        }
        sb.Append('"');
    }

    private static void PrintClass(StringBuilder sb, GClass c)
    {
        sb.Append('[');
        if (c.Negated) sb.Append('^');
        if (!c.Negated && c.Ranges.Count == 0) sb.Append("^\\x00-\\U0010FFFF");
        foreach (var (lo, hi) in c.Ranges)
        {
            AppendClassChar(sb, lo);
            if (hi != lo) { sb.Append('-'); AppendClassChar(sb, hi); }
        }
        sb.Append(']');
    }

    private static void AppendClassChar(StringBuilder sb, int c)
    {
        if (c is '\\' or ']' or '[' or '-' or '^' or '"') sb.Append('\\').Append((char)c);
        else AppendChar(sb, c);
    }

    private static void AppendChar(StringBuilder sb, int c)
    {
        switch (c)
        {
            case '\n': sb.Append("\\n"); return;
            case '\r': sb.Append("\\r"); return;
            case '\t': sb.Append("\\t"); return;
        }
        if (c < 0x20 || c == 0x7F) sb.Append("\\x").Append(c.ToString("X2", CultureInfo.InvariantCulture));
        else if (c >= 0xD800 && c <= 0xDFFF) sb.Append("\\u").Append(c.ToString("X4", CultureInfo.InvariantCulture));
        else if (c > 0xFFFF && !Rune.IsValid(c)) sb.Append("\\U").Append(c.ToString("X8", CultureInfo.InvariantCulture));
        else if (c > 0x7E && (Rune.GetUnicodeCategory(new Rune(c)) is UnicodeCategory.Control or UnicodeCategory.Format
                 or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse or UnicodeCategory.LineSeparator
                 or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator))
            sb.Append(c > 0xFFFF ? "\\U" + c.ToString("X8", CultureInfo.InvariantCulture) : "\\u" + c.ToString("X4", CultureInfo.InvariantCulture));
        else sb.Append(new Rune(c).ToString());
    }
}

/// <summary>A grammar, GBNF text or JSON Schema that cannot be compiled; the message is one line naming the cause.</summary>
public class GrammarException(string message) : Exception(message);

/// <summary>A JSON Schema that uses a keyword or a combination the compiler does not support (a 400 for the server).</summary>
public sealed class UnsupportedSchemaException(string keyword, string message) : GrammarException(message)
{
    /// <summary>The keyword (or "keyword: detail") that was refused.</summary>
    public string Keyword { get; } = keyword;
}
