// The ECMA-262 regular expressions of JSON Schema's "pattern", translated to grammar nodes over the characters
// of the string value: alternation, groups (capturing and (?:)), greedy and lazy quantifiers, classes with
// ranges, negation and \d \w \s, escapes, '.'; ^ and $ at the ends of the pattern or of its top-level
// alternatives. Unanchored ends match anything, as the spec says (a search, not a full match). Lookaround,
// backreferences, \b and \p{...} are refused.
using System.Globalization;
using System.Text;

namespace R1Sharp.Grammar;

internal static class EcmaRegex
{
    private static readonly (int, int)[] s_digit = [('0', '9')];
    private static readonly (int, int)[] s_word = [('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
    private static readonly (int, int)[] s_space =
        [(9, 13), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)];
    private static readonly (int, int)[] s_lineTerminators = [('\n', '\n'), ('\r', '\r'), (0x2028, 0x2029)];

    /// <summary>The pattern as a node over code points of the string (not yet JSON-escaped).</summary>
    public static GNode Translate(string pattern)
    {
        var p = new Parser(pattern);
        var alts = p.ParseTop();
        var result = new List<GNode>();
        foreach (var (node, startAnchored, endAnchored) in alts)
        {
            var items = new List<GNode>();
            if (!startAnchored) items.Add(new GRepeat(GClass.Any, 0, -1));
            items.Add(node);
            if (!endAnchored) items.Add(new GRepeat(GClass.Any, 0, -1));
            result.Add(new GSeq(items));
        }
        return result.Count == 1 ? result[0] : new GAlt(result);
    }

    /// <summary>Shortest and longest match in characters (-1: unbounded).</summary>
    public static (int Min, int Max) Lengths(GNode n)
    {
        switch (n)
        {
            case GLit l: { int c = l.Text.EnumerateRunes().Count(); return (c, c); }
            case GClass: return (1, 1);
            case GSeq s:
            {
                int min = 0, max = 0;
                foreach (var i in s.Items)
                {
                    var (a, b) = Lengths(i);
                    min += a;
                    max = max < 0 || b < 0 ? -1 : max + b;
                }
                return (min, max);
            }
            case GAlt a:
            {
                if (a.Items.Count == 0) return (0, 0);
                int min = int.MaxValue, max = 0;
                foreach (var i in a.Items)
                {
                    var (x, y) = Lengths(i);
                    min = Math.Min(min, x);
                    max = max < 0 || y < 0 ? -1 : Math.Max(max, y);
                }
                return (min, max);
            }
            case GRepeat r:
            {
                var (x, y) = Lengths(r.Item);
                long min = (long)x * r.Min;
                int max = r.Max < 0 ? (y == 0 ? 0 : -1) : y < 0 ? -1 : (int)Math.Min(int.MaxValue, (long)y * r.Max);
                return ((int)Math.Min(int.MaxValue, min), max);
            }
            default: return (0, -1);
        }
    }

    private sealed class Parser(string s)
    {
        private int _pos;

        private UnsupportedSchemaException Error(string what) =>
            new("pattern", $"pattern '{Shorten(s)}': {what}");

        private static string Shorten(string x) => x.Length > 60 ? x[..57] + "..." : x;

        public List<(GNode Node, bool Start, bool End)> ParseTop()
        {
            var result = new List<(GNode, bool, bool)>();
            while (true)
            {
                bool start = false;
                if (_pos < s.Length && s[_pos] == '^') { start = true; _pos++; }
                var seq = ParseSequence(top: true, out bool end);
                result.Add((seq, start, end));
                if (_pos >= s.Length) break;
                if (s[_pos] == '|') { _pos++; continue; }
                throw Error(s[_pos] == ')' ? "unbalanced ')'" : $"unexpected '{s[_pos]}'");
            }
            return result;
        }

        private GNode ParseAlternation()
        {
            var alts = new List<GNode> { ParseSequence(top: false, out _) };
            while (_pos < s.Length && s[_pos] == '|')
            {
                _pos++;
                alts.Add(ParseSequence(top: false, out _));
            }
            return alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        private GNode ParseSequence(bool top, out bool endAnchor)
        {
            endAnchor = false;
            var items = new List<GNode>();
            while (_pos < s.Length && s[_pos] != '|' && s[_pos] != ')')
            {
                char c = s[_pos];
                if (c == '$')
                {
                    _pos++;
                    if (top && (_pos == s.Length || s[_pos] == '|')) { endAnchor = true; break; }
                    throw Error("'$' inside the pattern is not supported");
                }
                if (c == '^') throw Error("'^' inside the pattern is not supported");
                GNode atom = ParseAtom();
                items.Add(ParseQuantifier(atom));
            }
            return items.Count == 1 ? items[0] : new GSeq(items);
        }

        private GNode ParseQuantifier(GNode atom)
        {
            bool quantified = false;
            while (_pos < s.Length)
            {
                char c = s[_pos];
                int min, max;
                if (c == '*') { min = 0; max = -1; _pos++; }
                else if (c == '+') { min = 1; max = -1; _pos++; }
                else if (c == '?') { min = 0; max = 1; _pos++; }
                else if (c == '{' && TryBraces(out min, out max)) { }
                else break;
                if (_pos < s.Length && s[_pos] == '?') _pos++; // lazy: same language
                if (quantified) throw Error("nothing to repeat (a quantifier after a quantifier)");
                quantified = true;
                atom = new GRepeat(atom, min, max);
            }
            return atom;
        }

        private bool TryBraces(out int min, out int max)
        {
            min = max = 0;
            int p = _pos + 1, start = p;
            while (p < s.Length && char.IsAsciiDigit(s[p])) p++;
            if (p == start) return false; // a literal '{' in ECMA's annex B
            min = ParseCount(s[start..p]);
            if (p < s.Length && s[p] == '}') { max = min; _pos = p + 1; return true; }
            if (p >= s.Length || s[p] != ',') return false;
            p++;
            int start2 = p;
            while (p < s.Length && char.IsAsciiDigit(s[p])) p++;
            if (p >= s.Length || s[p] != '}') return false;
            max = p == start2 ? -1 : ParseCount(s[start2..p]);
            if (max >= 0 && max < min) throw Error("quantifier {n,m} with m < n");
            _pos = p + 1;
            return true;
        }

        private int ParseCount(string digits) =>
            int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v <= 10_000 ? v
                : throw Error("quantifier count above 10000");

        private GNode ParseAtom()
        {
            char c = s[_pos];
            switch (c)
            {
                case '(':
                {
                    _pos++;
                    if (_pos < s.Length && s[_pos] == '?')
                    {
                        if (_pos + 1 < s.Length && s[_pos + 1] == ':') _pos += 2;
                        else if (_pos + 1 < s.Length && s[_pos + 1] == '<' && _pos + 2 < s.Length && s[_pos + 2] is not '=' and not '!')
                        {
                            int close = s.IndexOf('>', _pos);
                            if (close < 0) throw Error("unterminated group name");
                            _pos = close + 1; // named group
                        }
                        else throw Error("lookaround assertions are not supported");
                    }
                    var inner = ParseAlternation();
                    if (_pos >= s.Length || s[_pos] != ')') throw Error("missing ')'");
                    _pos++;
                    return inner;
                }
                case '[': return ParseClass();
                case '.':
                    _pos++;
                    return new GClass(s_lineTerminators, true);
                case '\\': return ParseEscape(inClass: false) is var (lo, hi, cls) && cls is not null ? cls : new GClass([(lo, hi)], false);
                case '*' or '+' or '?': throw Error($"nothing to repeat before '{c}'");
                default:
                {
                    int cp = CodePointAt(s, _pos, out int len);
                    _pos += len;
                    return new GLit(char.ConvertFromUtf32(cp));
                }
            }
        }

        // An escape: one code point (lo == hi), or a class (\d \w \s and negations).
        private (int Lo, int Hi, GClass? Class) ParseEscape(bool inClass)
        {
            _pos++; // backslash
            if (_pos >= s.Length) throw Error("trailing backslash");
            char e = s[_pos++];
            switch (e)
            {
                case 'd': return (0, 0, new GClass(s_digit, false));
                case 'D': return (0, 0, new GClass(s_digit, true));
                case 'w': return (0, 0, new GClass(s_word, false));
                case 'W': return (0, 0, new GClass(s_word, true));
                case 's': return (0, 0, new GClass(s_space, false));
                case 'S': return (0, 0, new GClass(s_space, true));
                case 'n': return ('\n', '\n', null);
                case 'r': return ('\r', '\r', null);
                case 't': return ('\t', '\t', null);
                case 'f': return ('\f', '\f', null);
                case 'v': return ('\v', '\v', null);
                case '0' when _pos >= s.Length || !char.IsAsciiDigit(s[_pos]): return (0, 0, null);
                case 'b' when inClass: return ('\b', '\b', null);
                case 'x': return Hex(2);
                case 'u':
                    if (_pos < s.Length && s[_pos] == '{')
                    {
                        int close = s.IndexOf('}', _pos);
                        if (close < 0) throw Error("bad \\u{...}");
                        int v = int.Parse(s.AsSpan(_pos + 1, close - _pos - 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
                        _pos = close + 1;
                        return (v, v, null);
                    }
                    var u = Hex(4);
                    // a surrogate pair written as two \u escapes
                    if (u.Lo is >= 0xD800 and <= 0xDBFF && _pos + 5 < s.Length && s[_pos] == '\\' && s[_pos + 1] == 'u')
                    {
                        int save = _pos;
                        _pos += 2;
                        var lo = Hex(4);
                        if (lo.Lo is >= 0xDC00 and <= 0xDFFF) { int cp = char.ConvertToUtf32((char)u.Lo, (char)lo.Lo); return (cp, cp, null); }
                        _pos = save;
                    }
                    return u;
                case 'c':
                    if (_pos < s.Length && char.IsAsciiLetter(s[_pos])) { int v = s[_pos++] % 32; return (v, v, null); }
                    throw Error("bad \\c escape");
                case 'b' or 'B': throw Error("word boundaries (\\b, \\B) are not supported");
                case 'p' or 'P': throw Error("Unicode property escapes (\\p{...}) are not supported");
                case 'k': throw Error("named backreferences are not supported");
                default:
                    if (char.IsAsciiDigit(e)) throw Error("backreferences are not supported");
                    if (char.IsAsciiLetterOrDigit(e)) throw Error($"unknown escape '\\{e}'");
                    int c = CodePointAt(s, _pos - 1, out int len);
                    _pos += len - 1;
                    return (c, c, null);
            }
        }

        private (int Lo, int Hi, GClass? Class) Hex(int n)
        {
            if (_pos + n > s.Length || !int.TryParse(s.AsSpan(_pos, n), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v))
                throw Error("bad hex escape");
            _pos += n;
            return (v, v, null);
        }

        private GNode ParseClass()
        {
            _pos++; // [
            bool neg = false;
            if (_pos < s.Length && s[_pos] == '^') { neg = true; _pos++; }
            var ranges = new List<(int, int)>();
            var negatedParts = new List<GClass>(); // \D \W \S inside a class
            while (true)
            {
                if (_pos >= s.Length) throw Error("missing ']'");
                if (s[_pos] == ']') { _pos++; break; }
                var (lo, hi, cls) = ClassAtom();
                if (cls is not null)
                {
                    if (cls.Negated) negatedParts.Add(cls);
                    else ranges.AddRange(cls.Ranges);
                    continue;
                }
                if (_pos + 1 < s.Length && s[_pos] == '-' && s[_pos + 1] != ']')
                {
                    _pos++;
                    var (lo2, hi2, cls2) = ClassAtom();
                    if (cls2 is not null) throw Error("a class escape cannot end a range");
                    if (lo2 < lo) throw Error("range out of order in a character class");
                    ranges.Add((lo, hi2));
                    continue;
                }
                ranges.Add((lo, hi));
            }
            if (negatedParts.Count > 0)
            {
                // [..\D..]: the union with the complement of the escape's set
                var set = new List<(int, int)>(ranges);
                foreach (var n in negatedParts) set.AddRange(GrammarAutomaton.ClassRanges(n));
                return new GClass(set, neg);
            }
            return new GClass(ranges, neg);
        }

        private (int, int, GClass?) ClassAtom()
        {
            if (s[_pos] == '\\') return ParseEscape(inClass: true);
            int cp = CodePointAt(s, _pos, out int len);
            _pos += len;
            return (cp, cp, null);
        }
    }

    private static int CodePointAt(string s, int i, out int len)
    {
        if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { len = 2; return char.ConvertToUtf32(s[i], s[i + 1]); }
        len = 1;
        return s[i];
    }
}
