// Where a wrong completion first leaves the worked solution. The arithmetic solution is deterministic (every line
// follows from the line above), so the first line that differs from the reference is the model's mistake; later lines
// usually follow it faithfully. The line is named by its role (the expression copied from the question, the first line
// of an operation, a column of an addition, a pass of a multiplication, a digit of a long division, ...) and by the
// field that first differs (the operands still to go, the carry, the digits found so far, ...).
using System.Text.RegularExpressions;

namespace R1Sharp.Training.Tasks;

/// <param name="Line">Index of the first differing line (0 = the first line of the reasoning).</param>
/// <param name="Kind">The role of the reference line there ("mul column", "div digit", "expression", ...).</param>
/// <param name="Field">The first field of that line that differs ("carry", "digits", ...); "line" when the model's line has another shape, "missing" when the completion ended before it.</param>
public sealed record FirstError(int Line, string Kind, string Field, string Expected, string? Got)
{
    private static readonly (string Kind, Regex Pattern, string[] Fields)[] Shapes =
    [
        ("add column", new(@"^(\d*)\+(\d*) c(\d+) =(-?)(\d*)$"), ["operands", "operands", "carry", "sign", "digits"]),
        ("sub column", new(@"^(\d*)-(\d*) b(\d+) =(-?)(\d*)$"), ["operands", "operands", "borrow", "sign", "digits"]),
        ("mul column", new(@"^(\d*)\*(\d)(\|\d+)? c(\d+) =(-?)(\d*)$"), ["operands", "digit of the factor", "digits to come", "carry", "sign", "digits"]),
        ("mul pass column", new(@"^(\d*)\+(\d*)\*(\d)(\|\d+)? c(\d+) =(-?)(\d*)$"), ["ten times the result so far", "operands", "digit of the factor", "digits to come", "carry", "sign", "digits"]),
        ("div start", new(@"^(\d+)/(\d+) =(-?)$"), ["dividend", "divisor", "sign"]),
        ("div multiples", new(@"^1:\d+( \d:\d+)*$"), []),
        ("div digit", new(@"^(\d*) (\d+)-(\d+) r(\d+) =(-?)(\d+)$"), ["digits to bring down", "partial dividend", "multiple", "remainder", "sign", "quotient"]),
        ("div digit after its columns", new(@"^(\d*) r(\d+) =(-?)(\d+)$"), ["digits to bring down", "remainder", "sign", "quotient"]),
    ];

    /// <summary>
    /// The first line where <paramref name="completion"/> departs from <paramref name="reference"/> (both as the model
    /// writes them: reasoning lines, "&lt;/think&gt;", the answer), or null when it does not depart.
    /// </summary>
    public static FirstError? Find(string reference, string completion)
    {
        var want = reference.Split('\n');
        var got = completion.Split('\n');
        for (int i = 0; i < want.Length; i++)
        {
            string? g = i < got.Length ? got[i] : null;
            if (g == want[i] || (i == want.Length - 1 && g?.Trim() == want[i].Trim())) continue;
            var (kind, field) = Classify(want, i, g);
            return new FirstError(i, kind, field, want[i], g);
        }
        // more than the reference after its answer: the answer is the last line and what follows it
        string after = string.Join('\n', got.Skip(want.Length)).Trim();
        if (after.Length == 0) return null;
        int last = want.Length - 1;
        return new FirstError(last, "answer", "line", want[last], string.Join('\n', got.Skip(last)));
    }

    private static (string Kind, string Field) Classify(string[] want, int i, string? got)
    {
        string line = want[i];
        int close = Array.IndexOf(want, "</think>");
        if (close >= 0 && i > close) return ("answer", got is null ? "missing" : "line");
        if (line == "</think>") return ("</think>", got is null ? "missing" : "line");
        if (i == 0) return (line == ArithmeticTask.NotArithmetic ? "refusal" : "expression", got is null ? "missing" : "line");
        foreach (var (kind, pattern, shapeFields) in Shapes)
        {
            string[] fields = shapeFields;
            var m = pattern.Match(line);
            if (!m.Success) continue;
            // the first line of an operation (after an expression line) chooses the operation, the order and the sign
            bool start = kind.EndsWith(" column", StringComparison.Ordinal) && IsExpression(want[i - 1]);
            string name = start ? kind.Replace(" column", " start", StringComparison.Ordinal) : kind;
            if (kind == "mul pass column" && m.Groups[5].Value == "0" && m.Groups[7].Value.Length == 0) name = "mul pass start";
            if (!start) (name, fields) = InOperation(want, i, kind, name, m, fields);
            if (got is null) return (name, "missing");
            var g = pattern.Match(got);
            if (!g.Success) return (name, "line");
            for (int f = 0; f < fields.Length; f++)
                if (m.Groups[f + 1].Value != g.Groups[f + 1].Value) return (name, fields[f]);
            return (name, "line");
        }
        return ("expression after an operation", got is null ? "missing" : "line");
    }

    /// <summary>
    /// Format 2's column lines inside another operation: a later multiplication pass's partial product ("mul partial")
    /// and its addition to ten times the result so far ("mul add"), a division's remainder by columns ("div remainder"),
    /// a subtraction written again the other way after a final borrow ("sub swap"). Each block's first line (no digits
    /// yet) is its "start". Format 1's lines keep their names.
    /// </summary>
    private static (string Name, string[] Fields) InOperation(string[] want, int i, string kind, string name, Match m, string[] fields)
    {
        int s = i;
        while (s > 0 && !IsExpression(want[s - 1])) s--;
        string first = want[s];
        bool blockStart = m.Groups[fields.Length].Value.Length == 0; // no digits yet
        // the operation's kind is its first line's shape
        bool Is(int shape) => Shapes[shape].Pattern.IsMatch(first);
        switch (kind)
        {
            case "mul column" when Is(2):
                // a pass start after the operation's first line opens a later pass of format 2
                for (int j = i; j > s; j--)
                    if (Shapes[2].Pattern.Match(want[j]) is { Success: true } p && p.Groups[6].Value.Length == 0)
                        return (j == i ? "mul partial start" : "mul partial column", fields);
                return (name, fields);
            case "add column" when Is(2):
                return (blockStart ? "mul add start" : "mul add column", fields);
            case "sub column" when Is(4):
                return (blockStart ? "div remainder start" : "div remainder column",
                    blockStart ? ["partial dividend", "multiple", "borrow", "sign", "digits"] : fields);
            case "sub column" when Is(1):
                for (int j = i; j > s; j--)
                    if (Shapes[1].Pattern.Match(want[j]) is { Success: true } p && p.Groups[5].Value.Length == 0)
                        return (j == i ? "sub swap start" : "sub swap column", fields);
                return (name, fields);
            default:
                return (name, fields);
        }
    }

    /// <summary>An expression line: the question's expression or one with an operation's result in its place.</summary>
    private static bool IsExpression(string line) => !line.Contains(' ') && !line.Contains('=') && !line.StartsWith("1:", StringComparison.Ordinal);
}
