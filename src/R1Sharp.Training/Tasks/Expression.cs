// Integer expressions as the arithmetic task reads and writes them. Parse reads what people type (symbols or words,
// spaces or none, thousands separators, parentheses, negative numbers, "What is ...?") into a canonical list of terms;
// ToString writes the canonical form the worked solution starts from ("12*(3400--5)"); Reduce performs the one
// operation the usual precedence picks next (the innermost, leftmost parentheses first, then * and / left to right,
// then + and - left to right), which is what each step of the worked solution does.
using System.Globalization;
using System.Text;

namespace R1Sharp.Training.Tasks;

public enum TermKind { Number, Operator, Open, Close }

/// <summary>A number (signed), a binary operator (+ - * /) or a parenthesis.</summary>
public readonly record struct Term(TermKind Kind, long Value = 0, char Op = '\0')
{
    public static Term Num(long value) => new(TermKind.Number, value);
    public static Term Oper(char op) => new(TermKind.Operator, 0, op);
    public static Term Open => new(TermKind.Open);
    public static Term Close => new(TermKind.Close);
}

/// <summary>One operation of an expression: a op b, the terms it spans, and its value.</summary>
public readonly record struct Operation(long A, char Op, long B, int Start, int End, long Value);

public sealed class Expression
{
    private readonly Term[] _terms;

    public Expression(IEnumerable<Term> terms)
    {
        _terms = Simplified(terms.ToList()).ToArray();
        if (!WellFormed(_terms)) throw new ArgumentException("not a well-formed expression");
    }

    public IReadOnlyList<Term> Terms => _terms;

    /// <summary>Number of binary operations left.</summary>
    public int Operations => _terms.Count(t => t.Kind == TermKind.Operator);

    /// <summary>The canonical form: no spaces, negative numbers written with their sign ("3*-2", "5--7").</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var t in _terms)
            sb.Append(t.Kind switch
            {
                TermKind.Number => t.Value.ToString(CultureInfo.InvariantCulture),
                TermKind.Operator => t.Op.ToString(),
                TermKind.Open => "(",
                _ => ")",
            });
        return sb.ToString();
    }

    /// <summary>The operation the usual precedence performs next; null when the expression is one number.</summary>
    public Operation? Next()
    {
        // the innermost, leftmost parentheses: the group that the first ")" closes
        int lo = 0, hi = _terms.Length;
        for (int i = 0; i < _terms.Length; i++)
        {
            if (_terms[i].Kind != TermKind.Close) continue;
            int open = Array.FindLastIndex(_terms, i, t => t.Kind == TermKind.Open);
            (lo, hi) = (open + 1, i);
            break;
        }
        int at = -1;
        for (int i = lo; i < hi && at < 0; i++)
            if (_terms[i].Kind == TermKind.Operator && _terms[i].Op is '*' or '/') at = i;
        for (int i = lo; i < hi && at < 0; i++)
            if (_terms[i].Kind == TermKind.Operator) at = i;
        if (at < 0) return null;
        long a = _terms[at - 1].Value, b = _terms[at + 1].Value;
        return new Operation(a, _terms[at].Op, b, at - 1, at + 2, Apply(a, _terms[at].Op, b));
    }

    /// <summary>The expression with <paramref name="op"/> replaced by its value (parentheses around one number dropped).</summary>
    public Expression Reduce(Operation op)
    {
        var terms = new List<Term>(_terms.Length);
        terms.AddRange(_terms.AsSpan(0, op.Start));
        terms.Add(Term.Num(op.Value));
        terms.AddRange(_terms.AsSpan(op.End));
        return new Expression(terms);
    }

    public long Evaluate()
    {
        var e = this;
        while (e.Next() is { } op) e = e.Reduce(op);
        return e._terms[0].Value;
    }

    /// <summary>Every operation in the order the worked solution performs them.</summary>
    public IEnumerable<Operation> Steps()
    {
        var e = this;
        while (e.Next() is { } op)
        {
            yield return op;
            e = e.Reduce(op);
        }
    }

    public static long Apply(long a, char op, long b) => op switch
    {
        '+' => checked(a + b),
        '-' => checked(a - b),
        '*' => checked(a * b),
        '/' => b != 0 && a % b == 0 ? a / b : throw new ArithmeticException($"{a}/{b} is not an exact division"),
        _ => throw new ArgumentException($"unknown operator {op}"),
    };

    private static List<Term> Simplified(List<Term> t)
    {
        // "(5)" and "(-5)" are the number alone
        for (int i = 0; i + 2 < t.Count; i++)
            if (t[i].Kind == TermKind.Open && t[i + 1].Kind == TermKind.Number && t[i + 2].Kind == TermKind.Close)
            {
                t.RemoveAt(i + 2);
                t.RemoveAt(i);
                i = Math.Max(-1, i - 2);
            }
        return t;
    }

    private static bool WellFormed(Term[] t)
    {
        int depth = 0;
        bool wantOperand = true;
        foreach (var x in t)
        {
            switch (x.Kind)
            {
                case TermKind.Number: if (!wantOperand) return false; wantOperand = false; break;
                case TermKind.Operator: if (wantOperand) return false; wantOperand = true; break;
                case TermKind.Open: if (!wantOperand) return false; depth++; break;
                default: if (wantOperand || --depth < 0) return false; break;
            }
        }
        return depth == 0 && !wantOperand;
    }

    private static readonly string[] Openers = ["what is", "what's", "compute", "calculate", "evaluate"];

    /// <summary>
    /// The expression a question asks for ("What is 12 times (3,400 - -5)?", "Compute 7+5.", "12*3 = ?", "12*3"), or
    /// null when the text is not one: any word besides the question's opening and the operator words, decimals, or a
    /// lone number.
    /// </summary>
    public static Expression? Parse(string question)
    {
        string s = question.Trim();
        foreach (string o in Openers)
            if (s.StartsWith(o, StringComparison.OrdinalIgnoreCase) && (s.Length == o.Length || !char.IsLetter(s[o.Length])))
            {
                s = s[o.Length..];
                break;
            }
        s = s.Trim().TrimEnd('?', '.', '!', ' ');
        if (s.EndsWith('=')) s = s[..^1];
        var terms = new List<Term>();
        int i = 0;
        while (true)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            if (i >= s.Length) break;
            char c = s[i];
            bool operandNext = terms.Count == 0 || terms[^1].Kind is TermKind.Operator or TermKind.Open;
            if (char.IsAsciiDigit(c) || (c == '-' && operandNext && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])))
            {
                bool negative = c == '-';
                if (negative) i++;
                if (!ReadNumber(s, ref i, out long v)) return null;
                terms.Add(Term.Num(negative ? -v : v));
                continue;
            }
            if (c == '(') { terms.Add(Term.Open); i++; continue; }
            if (c == ')') { terms.Add(Term.Close); i++; continue; }
            char? op = c switch { '+' => '+', '-' or '−' => '-', '*' or '×' => '*', '/' or '÷' => '/', _ => null };
            if (op is { } sym) { terms.Add(Term.Oper(sym)); i++; continue; }
            if (char.IsLetter(c) && OperatorWord(s, ref i) is { } word) { terms.Add(Term.Oper(word)); continue; }
            return null;
        }
        if (terms.Count(t => t.Kind == TermKind.Operator) == 0) return null;
        try
        {
            return new Expression(terms);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static readonly (string Word, char Op)[] Words =
        [("plus", '+'), ("minus", '-'), ("times", '*'), ("multiplied by", '*'), ("divided by", '/')];

    private static char? OperatorWord(string s, ref int i)
    {
        foreach (var (word, op) in Words)
        {
            int end = i + word.Length;
            if (end <= s.Length && string.Compare(s, i, word, 0, word.Length, StringComparison.OrdinalIgnoreCase) == 0
                && (end == s.Length || !char.IsLetter(s[end])))
            {
                i = end;
                return op;
            }
        }
        return null;
    }

    /// <summary>Digits, with or without thousands separators (1,234,567); no decimals, at most 15 digits.</summary>
    private static bool ReadNumber(string s, ref int i, out long value)
    {
        string digits = Answers.ReadDigits(s, ref i);
        value = 0;
        if (i < s.Length && (s[i] == '.' || s[i] == ',') && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])) return false; // 2.5, 1,23
        if (digits.Length > 15) return false;
        value = long.Parse(digits, CultureInfo.InvariantCulture);
        return true;
    }
}
