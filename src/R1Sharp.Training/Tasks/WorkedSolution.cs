// The worked solution of an arithmetic expression, as the model learns to write it. The first line is the expression
// in canonical form; then each operation, in the order of precedence, is written out by a column algorithm on the
// magnitudes (the sign of the result fixed on its first line and carried on every line), followed by the expression
// with the result in its place. Every line is a small, mechanical change of the line above it:
//   7+3*(12-45)       the expression
//   45-12 b0 =-       the group first; the larger magnitude first, the result is negative
//   4-1 b0 =-3        what is left of the operands, the borrow, the digits found so far
//   - b0 =-33
//   7+3*-33           the expression with the group's value
//   33*3 c0 =-        multiplication: the longer factor times each digit of the other from the left, adding
//   3*3 c0 =-9        each pass to ten times the one before (Horner's scheme; "|" marks the digits still to come)
//   *3 c0 =-99
//   7+-99
//   99-7 b0 =-
//   9- b0 =-2
//   - b0 =-92
//   -92
// Division writes the divisor's multiples once ("1:123 2:246 ..."), then one line per digit of the dividend: the digits
// still to bring down, the partial dividend minus the largest multiple that fits, the remainder, the quotient so far.
//
// Format 2 keeps every line within the column steps above (one digit of each operand and a carry or borrow):
//   a later multiplication pass writes the partial product x·d by the first pass's column lines, then adds it to ten
//   times the result so far by the addition column lines ("61700+7404 c0 =", ...), instead of one token per column
//   holding the sum of three terms;
//   a division digit whose multiple is not zero works the remainder out by the subtraction column lines
//   ("987-984 b0 =", "98-98 b0 =3", ...), then the digit's line: digits to bring down, remainder, quotient ("69 r3 =008");
//   a subtraction of magnitudes subtracts in the written order with the sign of the first operand; a final borrow of 1
//   means the second magnitude is the larger, and the subtraction is written again the other way with its sign
//   ("12-345 b0 =", ..., "- b1 =667", "345-12 b0 =-", ..., "- b0 =-333"): no comparison of magnitudes in one step.
// Format 1 is the earlier format, kept byte for byte so the models trained on it are still evaluated and reproduced.
using System.Globalization;
using System.Text;

namespace R1Sharp.Training.Tasks;

public static class WorkedSolution
{
    /// <summary>The formats <see cref="Write"/> knows (1: the earlier one; 2: every line a column step).</summary>
    public const int LatestFormat = 2;

    /// <summary>The reasoning (one line per step), "&lt;/think&gt;\n", and the value.</summary>
    public static string Write(Expression e, int format = 1)
    {
        if (format is < 1 or > LatestFormat) throw new ArgumentException($"worked-solution format {format} is not 1 or 2");
        var sb = new StringBuilder();
        sb.Append(e).Append('\n');
        while (e.Next() is { } op)
        {
            long value = Operation(sb, op, format);
            if (value != op.Value) throw new InvalidOperationException($"{op.A}{op.Op}{op.B}: the column algorithm gave {value}, not {op.Value}");
            e = e.Reduce(op);
            sb.Append(e).Append('\n');
        }
        sb.Append("</think>\n").Append(e);
        return sb.ToString();
    }

    /// <summary>Writes one operation's lines and returns its value.</summary>
    public static long Operation(StringBuilder sb, Operation op, int format = 1)
    {
        long a = op.A, b = op.Op == '-' ? -op.B : op.B;
        string x = Math.Abs(a).ToString(CultureInfo.InvariantCulture), y = Math.Abs(b).ToString(CultureInfo.InvariantCulture);
        // the sign each operand brings: a subtracted zero counts as negative, so "5-0" is a subtraction as written
        bool negA = a < 0, negB = op.Op == '-' ? op.B >= 0 : op.B < 0;
        string sign, digits;
        switch (op.Op)
        {
            case '+' or '-' when negA == negB:
                sign = negA ? "-" : "";
                digits = Add(sb, x, y, sign);
                break;
            case '+' or '-' when format >= 2:
                // opposite signs: in the written order with the first operand's sign; a final borrow means the other
                // magnitude is the larger: again the other way, with its sign
                sign = negA ? "-" : "";
                digits = Subtract(sb, x, y, sign, out int borrow);
                if (borrow == 1)
                {
                    sign = negB ? "-" : "";
                    digits = Subtract(sb, y, x, sign);
                }
                break;
            case '+' or '-':
                // opposite signs: the smaller magnitude from the larger, the sign of the larger (none when they are equal)
                bool aLarger = Math.Abs(a) >= Math.Abs(b);
                sign = Math.Abs(a) == Math.Abs(b) ? "" : (aLarger ? negA : negB) ? "-" : "";
                digits = aLarger ? Subtract(sb, x, y, sign) : Subtract(sb, y, x, sign);
                break;
            case '*':
                // the longer factor times the digits of the shorter: fewer passes
                sign = a < 0 != b < 0 && a != 0 && b != 0 ? "-" : "";
                digits = y.Length > x.Length ? Multiply(sb, y, x, sign, format) : Multiply(sb, x, y, sign, format);
                break;
            default:
                sign = a < 0 != b < 0 && a != 0 ? "-" : "";
                digits = Divide(sb, x, y, sign, format);
                break;
        }
        return long.Parse(sign + Strip(digits), CultureInfo.InvariantCulture);
    }

    /// <summary>Digits without leading zeros ("0" for none).</summary>
    public static string Strip(string digits)
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

    /// <summary>Column addition, one line per column: "347+589 c0 =", "34+58 c1 =6", "3+5 c1 =36", "+ c0 =936".</summary>
    public static string Add(StringBuilder sb, string x, string y, string sign)
    {
        int carry = 0;
        string r = "";
        sb.Append($"{x}+{y} c{carry} ={sign}{r}\n");
        while (x.Length > 0 || y.Length > 0 || carry > 0)
        {
            int s = Last(ref x) + Last(ref y) + carry;
            r = (char)('0' + s % 10) + r;
            carry = s / 10;
            sb.Append($"{x}+{y} c{carry} ={sign}{r}\n");
        }
        return r;
    }

    /// <summary>Column subtraction x − y (x ≥ y) with borrows: "345-12 b0 =", "34-1 b0 =3", "3- b0 =33", "- b0 =333".</summary>
    public static string Subtract(StringBuilder sb, string x, string y, string sign) => Subtract(sb, x, y, sign, out _);

    /// <summary>Column subtraction x − y; <paramref name="borrow"/> is the final borrow (1 when y &gt; x: the digits are then 10ⁿ + x − y).</summary>
    public static string Subtract(StringBuilder sb, string x, string y, string sign, out int borrow)
    {
        borrow = 0;
        string r = "";
        sb.Append($"{x}-{y} b{borrow} ={sign}{r}\n");
        while (x.Length > 0 || y.Length > 0)
        {
            int d = Last(ref x) - Last(ref y) - borrow;
            borrow = d < 0 ? 1 : 0;
            r = (char)('0' + d + 10 * borrow) + r;
            sb.Append($"{x}-{y} b{borrow} ={sign}{r}\n");
        }
        return r;
    }

    /// <summary>
    /// Long multiplication by Horner's scheme over the digits of y from the left: the first pass is x·d column by
    /// column ("1234*5|678 c0 =", "123*5 c2 =0", ...); each later pass adds x·d to ten times the result so far
    /// ("61700+1234*6|78 c0 =", "6170+123*6 c2 =4", ...), each column's digit of the sum, x's digit times d, and the
    /// carry. "|" shows the digits of y still to come on each pass's first line. Format 2 writes each later pass as
    /// x·d by the first pass's column lines, then ten times the result so far plus x·d by the addition column lines.
    /// </summary>
    public static string Multiply(StringBuilder sb, string x, string y, string sign, int format = 1)
    {
        string acc = "";
        for (int i = 0; i < y.Length; i++)
        {
            int d = y[i] - '0';
            string rest = i + 1 < y.Length ? "|" + y[(i + 1)..] : "";
            string a = x, r = "";
            int carry = 0;
            if (i == 0 || format >= 2)
            {
                sb.Append($"{a}*{d}{rest} c{carry} ={sign}{r}\n");
                while (a.Length > 0 || carry > 0)
                {
                    int s = Last(ref a) * d + carry;
                    r = (char)('0' + s % 10) + r;
                    carry = s / 10;
                    sb.Append($"{a}*{d} c{carry} ={sign}{r}\n");
                }
                if (i > 0) r = Add(sb, Strip(acc) + "0", Strip(r), sign);
            }
            else
            {
                string m = Strip(acc) + "0";
                sb.Append($"{m}+{a}*{d}{rest} c{carry} ={sign}{r}\n");
                while (m.Length > 0 || a.Length > 0 || carry > 0)
                {
                    int s = Last(ref m) + Last(ref a) * d + carry;
                    r = (char)('0' + s % 10) + r;
                    carry = s / 10;
                    sb.Append($"{m}+{a}*{d} c{carry} ={sign}{r}\n");
                }
            }
            acc = r;
        }
        return acc;
    }

    /// <summary>
    /// Long division of x by y (exact or not; the quotient's digits are returned): the multiples of y, then one line
    /// per digit of x: "69 987-984 r3 =008" is "digits still to bring down 69; 987 minus 8·123; remainder 3; quotient
    /// so far 008". Format 2 writes a non-zero multiple's subtraction by columns ("987-984 b0 =", ..., "- b0 =003"),
    /// then the digit's line without the subtraction its first line showed: "69 r3 =008".
    /// </summary>
    public static string Divide(StringBuilder sb, string x, string y, string sign, int format = 1)
    {
        long divisor = long.Parse(y, CultureInfo.InvariantCulture);
        if (divisor == 0) throw new DivideByZeroException();
        sb.Append($"{x}/{y} ={sign}\n");
        for (int k = 1; k <= 9; k++) sb.Append(k > 1 ? " " : "").Append($"{k}:{k * divisor}");
        sb.Append('\n');
        long rem = 0;
        string q = "", rest = x;
        while (rest.Length > 0)
        {
            long cur = rem * 10 + (rest[0] - '0');
            rest = rest[1..];
            long k = cur / divisor, m = k * divisor;
            rem = cur - m;
            q += (char)('0' + k);
            if (format >= 2 && k > 0)
            {
                // the subtraction's first line shows the partial dividend and the multiple; the digit's line the rest
                string r = Subtract(sb, cur.ToString(CultureInfo.InvariantCulture), m.ToString(CultureInfo.InvariantCulture), "");
                if (long.Parse(r, CultureInfo.InvariantCulture) != rem) throw new InvalidOperationException($"{cur}-{m}: the columns gave {r}");
                sb.Append($"{rest} r{rem} ={sign}{q}\n");
                continue;
            }
            sb.Append($"{rest} {cur}-{m} r{rem} ={sign}{q}\n");
        }
        return q;
    }
}
