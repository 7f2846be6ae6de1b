// Countdown (TinyZero's task): reach a target with the given numbers, each used exactly once, with + − × ÷.
// The reward evaluates the answer expression exactly (rationals) and checks the multiset of numbers it uses.
using System.Text;
using R1Sharp.Sampling;

namespace R1Sharp.Training.Tasks;

public sealed class CountdownTask : IReasoningTask
{
    public sealed record Instance(int[] Numbers, int Target, string Expression, string[] Steps);

    public string Name => "countdown";

    /// <summary>How many numbers are given.</summary>
    public int Count { get; init; } = 3;

    public Problem Generate(ulong seed)
    {
        var rng = new Xoshiro256(seed ^ 0xC0DE_0002UL);
        while (true)
        {
            var nums = Enumerable.Range(0, Count).Select(_ => 1 + (int)(rng.Next() % 25)).ToArray();
            // a random left-to-right combination of a random order of the numbers
            var order = nums.OrderBy(_ => rng.Next()).ToArray();
            long value = order[0];
            string expr = order[0].ToString();
            var steps = new List<string>();
            bool ok = true;
            for (int i = 1; i < order.Length && ok; i++)
            {
                char op = "+-*/"[(int)(rng.Next() % 4)];
                long v = order[i], next;
                switch (op)
                {
                    case '+': next = value + v; break;
                    case '-': next = value - v; break;
                    case '*': next = value * v; break;
                    default: if (v == 0 || value % v != 0) { op = '+'; next = value + v; } else next = value / v; break;
                }
                steps.Add($"{value}{op}{v}={next}");
                expr = i == 1 ? $"{expr}{op}{v}" : $"({expr}){op}{v}";
                value = next;
                ok = value > 0 && value <= 999;
            }
            if (!ok) continue;
            string list = string.Join(", ", nums);
            string prompt = $"Using the numbers {list}, make {value}. Use each number once with + - * /.";
            return new Problem(prompt, expr, new Instance(nums, (int)value, expr, steps.ToArray()));
        }
    }

    public string Solution(Problem p)
    {
        var inst = (Instance)p.Data;
        var sb = new StringBuilder();
        foreach (string s in inst.Steps) sb.Append(s).Append('\n');
        sb.Append("</think>\n").Append(inst.Expression);
        return sb.ToString();
    }

    public Reward Score(Problem p, string completion)
    {
        var inst = (Instance)p.Data;
        var (answer, wellFormed) = Answers.Split(completion);
        return Reward.Of(answer != null && Check(answer, inst.Numbers, inst.Target), wellFormed, answer);
    }

    /// <summary>True when <paramref name="expression"/> uses exactly <paramref name="numbers"/> (as a multiset) and equals the target.</summary>
    public static bool Check(string expression, int[] numbers, int target)
    {
        string e = expression.Trim();
        int eq = e.IndexOf('=');
        if (eq >= 0) e = e[..eq]; // "25-7+3 = 21" states the target too
        var parser = new Parser(e);
        if (!parser.TryParse(out var value) || value.Den == 0) return false;
        var used = parser.Numbers.OrderBy(x => x).ToArray();
        return used.SequenceEqual(numbers.OrderBy(x => x)) && value.Num == (long)target * value.Den;
    }

    private readonly record struct Rational(long Num, long Den)
    {
        public static Rational Of(long n, long d)
        {
            if (d < 0) { n = -n; d = -d; }
            long g = Gcd(Math.Abs(n), d);
            return g > 1 ? new(n / g, d / g) : new(n, d);
        }
        private static long Gcd(long a, long b) { while (b != 0) (a, b) = (b, a % b); return a == 0 ? 1 : a; }
    }

    /// <summary>expr := term (('+'|'-') term)*; term := factor (('*'|'/'|'×'|'÷') factor)*; factor := number | '(' expr ')'.</summary>
    private sealed class Parser(string s)
    {
        private int _i;
        public List<int> Numbers { get; } = new();

        public bool TryParse(out Rational value)
        {
            value = default;
            try
            {
                value = Expr();
                Skip();
                return _i == s.Length;
            }
            catch (FormatException) { return false; }
            catch (OverflowException) { return false; }
        }

        private void Skip() { while (_i < s.Length && s[_i] == ' ') _i++; }

        private Rational Expr()
        {
            var v = Term();
            while (true)
            {
                Skip();
                if (_i >= s.Length || (s[_i] != '+' && s[_i] != '-')) return v;
                char op = s[_i++];
                var r = Term();
                v = op == '+' ? Rational.Of(checked(v.Num * r.Den + r.Num * v.Den), checked(v.Den * r.Den))
                              : Rational.Of(checked(v.Num * r.Den - r.Num * v.Den), checked(v.Den * r.Den));
            }
        }

        private Rational Term()
        {
            var v = Factor();
            while (true)
            {
                Skip();
                if (_i >= s.Length || "*/×÷".IndexOf(s[_i]) < 0) return v;
                char op = s[_i++];
                var r = Factor();
                if (op is '*' or '×') v = Rational.Of(checked(v.Num * r.Num), checked(v.Den * r.Den));
                else
                {
                    if (r.Num == 0) throw new FormatException("division by zero");
                    v = Rational.Of(checked(v.Num * r.Den), checked(v.Den * r.Num));
                }
            }
        }

        private Rational Factor()
        {
            Skip();
            if (_i < s.Length && s[_i] == '(')
            {
                _i++;
                var v = Expr();
                Skip();
                if (_i >= s.Length || s[_i] != ')') throw new FormatException("missing )");
                _i++;
                return v;
            }
            int start = _i;
            while (_i < s.Length && char.IsAsciiDigit(s[_i])) _i++;
            if (_i == start || _i - start > 6) throw new FormatException("expected a number");
            int n = int.Parse(s.AsSpan(start, _i - start));
            Numbers.Add(n);
            return new Rational(n, 1);
        }
    }
}
