// GBNF (llama.cpp's grammar format, grammars/README.md there): `name ::= alternatives`, literals "..." with
// escapes, classes [a-z] / [^...], '.', groups, * + ? {m} {m,} {m,n} {,n}, # comments. A rule ends at a
// newline unless inside parentheses or right after '|' or '::='.
using System.Globalization;
using System.Text;

namespace R1Sharp.Grammar;

public static class GbnfParser
{
    /// <summary>Parses GBNF text; throws <see cref="GrammarException"/> naming the line and cause.</summary>
    public static GrammarDefinition Parse(string text, string root = "root")
    {
        var p = new Parser(text);
        var rules = p.ParseRules();
        return new GrammarDefinition(rules, root);
    }

    private sealed class Parser(string s)
    {
        private int _pos;

        private GrammarException Error(string what)
        {
            int line = 1;
            for (int i = 0; i < _pos && i < s.Length; i++) if (s[i] == '\n') line++;
            return new GrammarException($"GBNF line {line}: {what}");
        }

        public List<KeyValuePair<string, GNode>> ParseRules()
        {
            var rules = new List<KeyValuePair<string, GNode>>();
            SkipSpace(newlines: true);
            while (_pos < s.Length)
            {
                string name = ParseName();
                SkipSpace(newlines: false);
                if (!s.AsSpan(_pos).StartsWith("::=")) throw Error($"expected '::=' after '{name}'");
                _pos += 3;
                SkipSpace(newlines: true);
                GNode body = ParseAlternates(nested: false);
                rules.Add(new(name, body));
                SkipSpace(newlines: false);
                if (_pos < s.Length && s[_pos] != '\n' && s[_pos] != '\r') throw Error($"unexpected '{s[_pos]}'");
                SkipSpace(newlines: true);
            }
            if (rules.Count == 0) throw new GrammarException("GBNF: the grammar has no rules");
            return rules;
        }

        private string ParseName()
        {
            int start = _pos;
            while (_pos < s.Length && (char.IsAsciiLetterOrDigit(s[_pos]) || s[_pos] is '-' or '_')) _pos++;
            if (_pos == start) throw Error(_pos < s.Length ? $"expected a rule name at '{s[_pos]}'" : "expected a rule name");
            return s[start.._pos];
        }

        private void SkipSpace(bool newlines)
        {
            while (_pos < s.Length)
            {
                char c = s[_pos];
                if (c == '#') { while (_pos < s.Length && s[_pos] != '\n') _pos++; }
                else if (c is ' ' or '\t' || (newlines && c is '\n' or '\r')) _pos++;
                else break;
            }
        }

        private GNode ParseAlternates(bool nested)
        {
            var alts = new List<GNode> { ParseSequence(nested) };
            while (_pos < s.Length && s[_pos] == '|')
            {
                _pos++;
                SkipSpace(newlines: true);
                alts.Add(ParseSequence(nested));
            }
            return alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        private GNode ParseSequence(bool nested)
        {
            var items = new List<GNode>();
            while (_pos < s.Length)
            {
                char c = s[_pos];
                GNode item;
                if (c == '"') item = ParseLiteral();
                else if (c == '[') item = ParseClass();
                else if (c == '.') { _pos++; item = GClass.Any; }
                else if (c == '(')
                {
                    _pos++;
                    SkipSpace(newlines: true);
                    item = ParseAlternates(nested: true);
                    if (_pos >= s.Length || s[_pos] != ')') throw Error("expected ')'");
                    _pos++;
                }
                else if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
                {
                    int save = _pos;
                    string name = ParseName();
                    // a name followed by ::= starts the next rule (only possible after a newline at top level)
                    int look = _pos;
                    while (look < s.Length && s[look] is ' ' or '\t') look++;
                    if (s.AsSpan(look).StartsWith("::=")) { _pos = save; break; }
                    item = new GRef(name);
                }
                else if (c == '<') throw Error("token references (<...>) are not supported");
                else break;
                SkipSpace(nested);
                // postfix operators
                while (_pos < s.Length && s[_pos] is '*' or '+' or '?' or '{')
                {
                    char op = s[_pos];
                    if (op == '{') item = ParseBraces(item);
                    else
                    {
                        _pos++;
                        item = op switch { '*' => new GRepeat(item, 0, -1), '+' => new GRepeat(item, 1, -1), _ => new GRepeat(item, 0, 1) };
                    }
                    SkipSpace(nested);
                }
                items.Add(item);
            }
            return items.Count == 1 ? items[0] : new GSeq(items);
        }

        private GNode ParseBraces(GNode item)
        {
            _pos++; // {
            SkipSpace(false);
            int? min = ParseInt();
            SkipSpace(false);
            int max;
            if (_pos < s.Length && s[_pos] == ',')
            {
                _pos++;
                SkipSpace(false);
                max = ParseInt() ?? -1;
                SkipSpace(false);
            }
            else max = min ?? throw Error("expected a number in '{...}'");
            if (_pos >= s.Length || s[_pos] != '}') throw Error("expected '}'");
            _pos++;
            int m = min ?? 0;
            if (max >= 0 && max < m) throw Error($"repetition {{{m},{max}}} has max < min");
            return new GRepeat(item, m, max);
        }

        private int? ParseInt()
        {
            int start = _pos;
            while (_pos < s.Length && char.IsAsciiDigit(s[_pos])) _pos++;
            if (_pos == start) return null;
            return int.TryParse(s.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v <= 100_000
                ? v : throw Error("repetition count too large (at most 100000)");
        }

        private GNode ParseLiteral()
        {
            _pos++; // "
            var sb = new StringBuilder();
            while (true)
            {
                if (_pos >= s.Length) throw Error("unterminated string literal");
                if (s[_pos] == '"') { _pos++; break; }
                AppendRune(sb, ParseChar());
            }
            return new GLit(sb.ToString());
        }

        private static void AppendRune(StringBuilder sb, int cp)
        {
            if (Rune.IsValid(cp)) sb.Append(new Rune(cp).ToString());
            else throw new GrammarException($"GBNF: code point U+{cp:X4} (a surrogate or beyond U+10FFFF) in a literal");
        }

        private GClass ParseClass()
        {
            _pos++; // [
            bool neg = false;
            if (_pos < s.Length && s[_pos] == '^') { neg = true; _pos++; }
            var ranges = new List<(int, int)>();
            while (true)
            {
                if (_pos >= s.Length) throw Error("unterminated character class");
                if (s[_pos] == ']') { _pos++; break; }
                int lo = ParseChar();
                int hi = lo;
                if (_pos + 1 < s.Length && s[_pos] == '-' && s[_pos + 1] != ']')
                {
                    _pos++;
                    hi = ParseChar();
                    if (hi < lo) throw Error($"character range {lo:X}-{hi:X} is reversed");
                }
                ranges.Add((lo, hi));
            }
            return new GClass(ranges, neg);
        }

        // One code point, with escapes \n \r \t \\ \" \[ \] \- \^ \xHH \uHHHH \UHHHHHHHH.
        private int ParseChar()
        {
            char c = s[_pos];
            if (c != '\\')
            {
                if (char.IsHighSurrogate(c) && _pos + 1 < s.Length && char.IsLowSurrogate(s[_pos + 1]))
                {
                    int cp = char.ConvertToUtf32(c, s[_pos + 1]);
                    _pos += 2;
                    return cp;
                }
                _pos++;
                return c;
            }
            if (_pos + 1 >= s.Length) throw Error("escape at end of input");
            char e = s[_pos + 1];
            _pos += 2;
            switch (e)
            {
                case 'n': return '\n';
                case 'r': return '\r';
                case 't': return '\t';
                case '\\' or '"' or '[' or ']' or '-' or '^' or '/' or '\'': return e;
                case 'x': return ParseHex(2);
                case 'u': return ParseHex(4);
                case 'U': return ParseHex(8);
                default: throw Error($"unknown escape '\\{e}'");
            }
        }

        private int ParseHex(int n)
        {
            if (_pos + n > s.Length) throw Error("truncated hex escape");
            if (!int.TryParse(s.AsSpan(_pos, n), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v) || v > 0x10FFFF)
                throw Error($"bad hex escape '{s.Substring(_pos, n)}'");
            _pos += n;
            return v;
        }
    }
}
