// Integer addition, subtraction and multiplication asked in plain words ("What is 17+25?", "Compute 123*45."), with a
// worked solution a small model can learn exactly: the column algorithm one line per column, each line restating what
// is left of the operands, the carry and the digits found so far, so every step only looks at the line above it.
//   347+589 c0 =        34+58 c1 =6        3+5 c1 =36        + c0 =936
// Multiplication writes one such product per digit of the second factor (the shift is the initial "=0"), then adds them.
using System.Text;
using R1Sharp.Sampling;

namespace R1Sharp.Training.Tasks;

public sealed class ArithmeticTask : IReasoningTask
{
    public sealed record Operands(long A, char Op, long B);

    public string Name => "arithmetic";

    /// <summary>Most digits of each operand: addition and subtraction 3, multiplication 2.</summary>
    public int AddDigits { get; init; } = 3;
    public int MulDigits { get; init; } = 2;

    public Problem Generate(ulong seed)
    {
        var rng = new Xoshiro256(seed ^ 0xA5A5_0001UL);
        int kind = (int)(rng.Next() % 3);
        char op = "+-*"[kind];
        int maxDigits = op == '*' ? MulDigits : AddDigits;
        long a = Number(ref rng, maxDigits), b = Number(ref rng, maxDigits);
        if (op == '-' && a < b) (a, b) = (b, a); // results stay non-negative
        string expr = $"{a}{op}{b}";
        string prompt = (rng.Next() % 3) switch { 0 => $"Compute {expr}.", 1 => $"Calculate {expr}.", _ => $"What is {expr}?" };
        long answer = op switch { '+' => a + b, '-' => a - b, _ => a * b };
        return new Problem(prompt, answer.ToString(), new Operands(a, op, b));
    }

    /// <summary>A number of 1..maxDigits digits, each length equally likely.</summary>
    private static long Number(ref Xoshiro256 rng, int maxDigits)
    {
        int digits = 1 + (int)(rng.Next() % (ulong)maxDigits);
        long lo = digits == 1 ? 0 : (long)Math.Pow(10, digits - 1), hi = (long)Math.Pow(10, digits);
        return lo + (long)(rng.Next() % (ulong)(hi - lo));
    }

    public string Solution(Problem p)
    {
        var (a, op, b) = (Operands)p.Data;
        var sb = new StringBuilder();
        string result = op switch
        {
            '+' => Add(sb, a.ToString(), b.ToString()),
            '-' => Subtract(sb, a.ToString(), b.ToString()),
            _ => Multiply(sb, a.ToString(), b.ToString()),
        };
        sb.Append("</think>\n").Append(StripZeros(result));
        return sb.ToString();
    }

    public Reward Score(Problem p, string completion)
    {
        var (answer, wellFormed) = Answers.Split(completion);
        long? value = Answers.Integer(answer);
        return Reward.Of(value?.ToString() == p.Answer, wellFormed, answer);
    }

    private static string StripZeros(string digits)
    {
        string s = digits.TrimStart('0');
        return s.Length == 0 ? "0" : s;
    }

    private static int Last(ref string s)
    {
        if (s.Length == 0) return 0;
        int d = s[^1] - '0';
        s = s[..^1];
        return d;
    }

    /// <summary>Column addition; returns the digits (possibly with leading zeros from the inputs).</summary>
    internal static string Add(StringBuilder sb, string x, string y)
    {
        int carry = 0;
        string r = "";
        sb.Append($"{x}+{y} c{carry} ={r}\n");
        while (x.Length > 0 || y.Length > 0 || carry > 0)
        {
            int s = Last(ref x) + Last(ref y) + carry;
            r = (char)('0' + s % 10) + r;
            carry = s / 10;
            sb.Append($"{x}+{y} c{carry} ={r}\n");
        }
        return r;
    }

    /// <summary>Column subtraction x − y for x ≥ y, with borrows.</summary>
    internal static string Subtract(StringBuilder sb, string x, string y)
    {
        int borrow = 0;
        string r = "";
        sb.Append($"{x}-{y} b{borrow} ={r}\n");
        while (x.Length > 0 || y.Length > 0)
        {
            int d = Last(ref x) - Last(ref y) - borrow;
            borrow = d < 0 ? 1 : 0;
            r = (char)('0' + d + 10 * borrow) + r;
            sb.Append($"{x}-{y} b{borrow} ={r}\n");
        }
        return r;
    }

    /// <summary>Long multiplication: x times each digit of y (shifted by its initial zeros), then the partial products added.</summary>
    internal static string Multiply(StringBuilder sb, string x, string y)
    {
        var partials = new List<string>();
        for (int i = 0; i < y.Length; i++)
        {
            int d = y[y.Length - 1 - i] - '0';
            string a = x, r = new('0', i);
            int carry = 0;
            sb.Append($"{a}*{d} c{carry} ={r}\n");
            while (a.Length > 0 || carry > 0)
            {
                int s = Last(ref a) * d + carry;
                r = (char)('0' + s % 10) + r;
                carry = s / 10;
                sb.Append($"{a}*{d} c{carry} ={r}\n");
            }
            partials.Add(r);
        }
        string sum = partials[0];
        for (int i = 1; i < partials.Count; i++) sum = Add(sb, sum, partials[i]);
        return sum;
    }
}
