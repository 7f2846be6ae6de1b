// Integer arithmetic as people write it, with worked solutions a small model can learn exactly (WorkedSolution), and
// off-domain questions answered honestly without a number. Problems come in categories that eval reports separately:
//   add, sub          two operands of up to 6 digits ("12-345" is −333)
//   mul               two factors of up to 4 digits
//   div               exact division by up to 3 digits, dividends of up to 6
//   precedence        3 or 4 operands mixing + − with × ÷, no parentheses
//   parentheses       3 or 4 operands with parentheses
//   multi-operand     3 or 4 operands of one precedence level
//   negative          negative operands ("-12 * 3", "5 - (-7)")
//   words             operators in words (plus, minus, times, multiplied by, divided by)
//   refusal           a question that is not arithmetic: a short reply saying what the model does, with no number
// Every operation of every problem stays in the domain: factors of at most 4 digits, divisors of at most 3 and
// dividends of at most 6 digits (exact), sums and differences of at most 8 digits (a product of two 4-digit factors).
// The phrasing ("What is ...?", "Compute ...", "... = ?", a bare expression), spacing, thousands separators and
// parentheses around negative numbers vary; some problems come after earlier turns of a conversation.
using System.Globalization;
using System.Text;
using R1Sharp.Chat;
using R1Sharp.Sampling;

namespace R1Sharp.Training.Tasks;

public sealed class ArithmeticTask : IReasoningTask
{
    /// <summary>The expression asked for (null for an off-domain question) and the problem's category.</summary>
    public sealed record Question(Expression? Expression, string Category);

    public const string NotArithmetic = "not an arithmetic expression";
    public const string Refusal = "I can only solve arithmetic with whole numbers: +, -, * and /.";

    public static IReadOnlyList<string> Categories { get; } =
        ["add", "sub", "mul", "div", "precedence", "parentheses", "multi-operand", "negative", "words", "refusal"];

    /// <summary>Relative frequency of each category (in <see cref="Categories"/> order), for training and eval alike.</summary>
    private static readonly int[] Weights = [8, 10, 12, 12, 12, 12, 10, 10, 9, 5];

    /// <summary>The worked solutions' format (<see cref="WorkedSolution.Write"/>): 2, or 1 for the models trained on the earlier one.</summary>
    public int Format { get; init; } = WorkedSolution.LatestFormat;

    /// <summary>Share of problems asked after one or two earlier turns.</summary>
    public double MultiTurnRate { get; init; } = 0.15;

    public string Name => "arithmetic";

    public Problem Generate(ulong seed)
    {
        var rng = new Xoshiro256(seed ^ 0xA5A5_0003UL);
        var p = Generate(ref rng, Category(ref rng));
        if (rng.NextDouble() >= MultiTurnRate) return p;
        var history = new List<ChatMessage>();
        int turns = 1 + (int)(rng.Next() % 2);
        for (int t = 0; t < turns; t++)
        {
            var earlier = Generate(ref rng, Category(ref rng));
            history.Add(ChatMessage.User(earlier.Prompt));
            history.Add(ChatMessage.Assistant(earlier.Answer.Length > 0 ? earlier.Answer : Refusal));
        }
        return p with { History = history };
    }

    /// <summary>A problem of one category (no history).</summary>
    public Problem Generate(ulong seed, string category)
    {
        if (!Categories.Contains(category)) throw new ArgumentException($"unknown category '{category}'");
        var rng = new Xoshiro256(seed ^ 0xA5A5_0004UL);
        return Generate(ref rng, category);
    }

    /// <summary>The problem for a question typed by a user: its expression, or an off-domain one.</summary>
    public static Problem FromQuestion(string question)
    {
        var e = Expression.Parse(question);
        long? value = null;
        try { value = e?.Evaluate(); }
        catch (Exception ex) when (ex is ArithmeticException) { e = null; }
        return new Problem(question, value?.ToString(CultureInfo.InvariantCulture) ?? "", new Question(e, e == null ? "refusal" : "all"));
    }

    public string Solution(Problem p)
    {
        var q = (Question)p.Data;
        return q.Expression is { } e ? WorkedSolution.Write(e, Format) : $"{NotArithmetic}\n</think>\n{Refusal}";
    }

    public Reward Score(Problem p, string completion)
    {
        var (answer, wellFormed) = Answers.Split(completion);
        bool correct = ((Question)p.Data).Expression is null
            ? answer != null && !answer.Any(char.IsAsciiDigit)
            : Answers.Integer(answer)?.ToString(CultureInfo.InvariantCulture) == p.Answer;
        return Reward.Of(correct, wellFormed, answer);
    }

    private static string Category(ref Xoshiro256 rng)
    {
        int total = Weights.Sum(), r = (int)(rng.Next() % (ulong)total);
        for (int i = 0; i < Weights.Length; i++)
        {
            if (r < Weights[i]) return Categories[i];
            r -= Weights[i];
        }
        throw new InvalidOperationException();
    }

    private static Problem Generate(ref Xoshiro256 rng, string category)
    {
        if (category == "refusal")
        {
            string q = OffDomainQuestions.Next(ref rng);
            return new Problem(q, "", new Question(null, category)) { Kind = category };
        }
        while (true)
        {
            var style = Style.Draw(ref rng, category == "words");
            Node? tree = category switch
            {
                "add" => Node.Bin(Node.Leaf(Number(ref rng, 1 + Uniform(ref rng, 6))), '+', Node.Leaf(Number(ref rng, 1 + Uniform(ref rng, 6)))),
                "sub" => Subtraction(ref rng),
                "mul" => Node.Bin(Node.Leaf(Number(ref rng, 1 + Uniform(ref rng, 4))), '*', Node.Leaf(Number(ref rng, 1 + Uniform(ref rng, 4)))),
                "div" => Division(ref rng),
                "precedence" => Flat(ref rng, 3 + Uniform(ref rng, 2), mixed: true),
                "multi-operand" => Flat(ref rng, 3 + Uniform(ref rng, 2), mixed: false),
                "parentheses" => Nested(ref rng, 3 + Uniform(ref rng, 2)),
                "negative" => Negate(ref rng, Any(ref rng, 2 + Uniform(ref rng, 3))),
                _ => Any(ref rng, 2 + Uniform(ref rng, 3)), // words
            };
            if (tree == null) continue;
            string text = style.Render(tree, ref rng);
            var e = Expression.Parse(text);
            if (e == null || !InDomain(e, out long value)) continue;
            if (category == "parentheses" && !e.Terms.Any(t => t.Kind == TermKind.Open)) continue;
            if (category == "negative" && !e.Terms.Any(t => t.Kind == TermKind.Number && t.Value < 0)) continue;
            string prompt = style.Phrase(text, ref rng);
            return new Problem(prompt, value.ToString(CultureInfo.InvariantCulture), new Question(e, category)) { Kind = category };
        }
    }

    /// <summary>Every operation within the domain's limits, and the value.</summary>
    public static bool InDomain(Expression e, out long value)
    {
        value = 0;
        try
        {
            foreach (var op in e.Steps())
            {
                long a = Math.Abs(op.A), b = Math.Abs(op.B);
                bool ok = op.Op switch
                {
                    '*' => a <= 9999 && b <= 9999,
                    '/' => b is >= 1 and <= 999 && a <= 999_999,
                    _ => a <= 99_999_999 && b <= 99_999_999 && Math.Abs(op.Value) <= 99_999_999,
                };
                if (!ok) return false;
            }
            value = e.Evaluate();
            return true;
        }
        catch (ArithmeticException)
        {
            return false;
        }
    }

    private static int Uniform(ref Xoshiro256 rng, int n) => (int)(rng.Next() % (ulong)n);

    /// <summary>A number of exactly <paramref name="digits"/> digits (0..9 for one).</summary>
    private static long Number(ref Xoshiro256 rng, int digits)
    {
        long lo = digits == 1 ? 0 : Pow10(digits - 1), hi = Pow10(digits);
        return lo + (long)(rng.Next() % (ulong)(hi - lo));
    }

    private static long Pow10(int n)
    {
        long p = 1;
        for (int i = 0; i < n; i++) p *= 10;
        return p;
    }

    /// <summary>Digits drawn from relative weights (index 0 is one digit).</summary>
    private static int Digits(ref Xoshiro256 rng, ReadOnlySpan<int> weights)
    {
        int total = 0;
        foreach (int w in weights) total += w;
        int r = Uniform(ref rng, total);
        for (int i = 0; i < weights.Length; i++)
        {
            if (r < weights[i]) return i + 1;
            r -= weights[i];
        }
        return weights.Length;
    }

    private static ReadOnlySpan<int> AddDigits => [4, 4, 4, 3, 2, 2];
    private static ReadOnlySpan<int> MulDigits => [4, 4, 3, 2];
    private static ReadOnlySpan<int> DivisorDigits => [4, 4, 3];

    /// <summary>a − b with as many equal lengths (and equal leading digits) as the comparison of magnitudes needs.</summary>
    private static Node Subtraction(ref Xoshiro256 rng)
    {
        int da = 1 + Uniform(ref rng, 6), db = rng.NextDouble() < 0.3 ? da : 1 + Uniform(ref rng, 6);
        long a = Number(ref rng, da), b = Number(ref rng, db);
        if (da == db && da > 1 && rng.NextDouble() < 0.4)
        {
            // share the leading digits, so the magnitudes differ late
            int keep = 1 + Uniform(ref rng, da - 1);
            long unit = Pow10(da - keep);
            b = a / unit * unit + b % unit;
        }
        return Node.Bin(Node.Leaf(a), '-', Node.Leaf(b));
    }

    /// <summary>An exact division: a divisor of 1 to 3 digits and a quotient that keeps the dividend within 6 digits.</summary>
    private static Node Division(ref Xoshiro256 rng)
    {
        long d = Math.Max(1, Number(ref rng, 1 + Uniform(ref rng, 3)));
        int maxQ = 7 - d.ToString(CultureInfo.InvariantCulture).Length;
        while (true)
        {
            long q = Number(ref rng, 1 + Uniform(ref rng, maxQ));
            if (q * d <= 999_999) return Node.Bin(Node.Leaf(q * d), '/', Node.Leaf(d));
        }
    }

    private static char Op(ref Xoshiro256 rng, bool additive) => additive ? "+-"[Uniform(ref rng, 2)] : "*/"[Uniform(ref rng, 2)];

    /// <summary>
    /// n operands joined left to right without parentheses: all of one precedence level, or mixed (both levels present).
    /// Each multiplicative run is made exact: a division right after the run's first operand rebuilds that operand
    /// as a multiple of a fresh divisor; a later one divides by a divisor of the run's value so far.
    /// </summary>
    private static Node? Flat(ref Xoshiro256 rng, int n, bool mixed)
    {
        var ops = new char[n - 1];
        bool additive = Uniform(ref rng, 2) == 0;
        for (int i = 0; i < ops.Length; i++) ops[i] = Op(ref rng, mixed ? Uniform(ref rng, 2) == 0 : additive);
        if (mixed && (ops.All(o => o is '+' or '-') || ops.All(o => o is '*' or '/'))) return null;
        return Chain(ref rng, ops);
    }

    private static Node? Chain(ref Xoshiro256 rng, char[] ops)
    {
        int n = ops.Length + 1;
        var values = new long[n];
        for (int i = 0; i < n; i++)
        {
            bool multiplicative = (i > 0 && ops[i - 1] is '*' or '/') || (i < ops.Length && ops[i] is '*' or '/');
            values[i] = Number(ref rng, Digits(ref rng, multiplicative ? MulDigits : AddDigits));
        }
        for (int i = 0; i < ops.Length; i++)
        {
            if (ops[i] != '/') continue;
            bool runStart = i == 0 || ops[i - 1] is '+' or '-';
            if (runStart)
            {
                long d = Math.Max(1, Number(ref rng, Digits(ref rng, DivisorDigits)));
                values[i + 1] = d;
                values[i] = d * Number(ref rng, Digits(ref rng, MulDigits));
            }
            else
            {
                // the run's value so far, left to right
                int s = i;
                while (s > 0 && ops[s - 1] is '*' or '/') s--;
                long v = values[s];
                for (int j = s; j < i; j++) v = ops[j] == '*' ? v * values[j + 1] : v / values[j + 1];
                values[i + 1] = Divisor(ref rng, v);
            }
        }
        Node node = Node.Leaf(values[0]);
        for (int i = 0; i < ops.Length; i++) node = Node.Bin(node, ops[i], Node.Leaf(values[i + 1]), flat: true);
        return node;
    }

    /// <summary>A random divisor of v of at most 3 digits (1 when v has no other).</summary>
    private static long Divisor(ref Xoshiro256 rng, long v)
    {
        v = Math.Abs(v);
        if (v == 0) return Math.Max(1, Number(ref rng, Digits(ref rng, DivisorDigits)));
        var ds = new List<long>();
        for (long d = 2; d <= 999 && d <= v; d++) if (v % d == 0) ds.Add(d);
        return ds.Count == 0 ? 1 : ds[Uniform(ref rng, ds.Count)];
    }

    /// <summary>A random binary tree of n leaves, written with the parentheses it needs (and at least one pair).</summary>
    private static Node? Nested(ref Xoshiro256 rng, int n)
    {
        var node = Tree(ref rng, n);
        return node != null && node.NeedsAnyParens() ? node : null;
    }

    /// <summary>Either a flat chain or a tree, of n operands.</summary>
    private static Node? Any(ref Xoshiro256 rng, int n)
    {
        if (n > 2 && Uniform(ref rng, 2) == 0) return Tree(ref rng, n);
        var ops = new char[n - 1];
        for (int i = 0; i < ops.Length; i++) ops[i] = "+-*/"[Uniform(ref rng, 4)];
        return Chain(ref rng, ops);
    }

    private static Node? Tree(ref Xoshiro256 rng, int n)
    {
        if (n == 1) return Node.Leaf(Number(ref rng, Digits(ref rng, AddDigits)));
        int left = 1 + Uniform(ref rng, n - 1);
        char op = "+-*/"[Uniform(ref rng, 4)];
        var l = Tree(ref rng, left);
        var r = Tree(ref rng, n - left);
        if (l == null || r == null) return null;
        if (op is '*' or '/')
        {
            // factors and divisors of their own sizes
            if (l.IsLeaf) l = Node.Leaf(Number(ref rng, Digits(ref rng, MulDigits)));
            if (r.IsLeaf) r = Node.Leaf(Number(ref rng, Digits(ref rng, op == '*' ? MulDigits : DivisorDigits)));
        }
        if (op == '/')
        {
            if (r.IsLeaf) r = Node.Leaf(Divisor(ref rng, l.Value));
            else if (l.IsLeaf && r.Value != 0 && Math.Abs(r.Value) <= 999) l = Node.Leaf(r.Value * Number(ref rng, Digits(ref rng, MulDigits)));
            else return null;
            if (r.Value == 0 || l.Value % r.Value != 0) return null;
        }
        return Node.Bin(l, op, r);
    }

    /// <summary>Some leaves (at least one) made negative.</summary>
    private static Node? Negate(ref Xoshiro256 rng, Node? node)
    {
        if (node == null) return null;
        var leaves = node.Leaves().ToList();
        int first = Uniform(ref rng, leaves.Count);
        for (int i = 0; i < leaves.Count; i++)
            if ((i == first || rng.NextDouble() < 0.3) && leaves[i].Value != 0) leaves[i].Value = -leaves[i].Value;
        node.Recompute();
        return node;
    }

    /// <summary>An expression tree: a leaf holds a number; a node an operator and two children.</summary>
    private sealed class Node
    {
        public long Value;
        public char Op;
        public Node? L, R;
        /// <summary>Part of a left-to-right chain: written without parentheses whatever the precedence.</summary>
        public bool Flat;
        public bool IsLeaf => L == null;

        public static Node Leaf(long v) => new() { Value = v };

        public static Node Bin(Node l, char op, Node r, bool flat = false)
        {
            var n = new Node { Op = op, L = l, R = r, Flat = flat };
            n.Value = SafeApply(l.Value, op, r.Value);
            return n;
        }

        private static long SafeApply(long a, char op, long b)
        {
            try { return op == '/' && (b == 0 || a % b != 0) ? long.MaxValue : Expression.Apply(a, op, b); }
            catch (OverflowException) { return long.MaxValue; }
        }

        public void Recompute()
        {
            if (IsLeaf) return;
            L!.Recompute();
            R!.Recompute();
            Value = SafeApply(L.Value, Op, R.Value);
        }

        public IEnumerable<Node> Leaves() => IsLeaf ? [this] : L!.Leaves().Concat(R!.Leaves());

        private static int Level(char op) => op is '+' or '-' ? 1 : 2;

        /// <summary>Whether child <paramref name="c"/> of this node must be in parentheses to keep its meaning.</summary>
        public bool ChildNeedsParens(Node c, bool right)
        {
            if (c.IsLeaf || Flat && !right) return false;
            if (Level(c.Op) < Level(Op)) return true;
            return right && Level(c.Op) == Level(Op) && (Op is '-' or '/' || c.Op is '-' or '/');
        }

        public bool NeedsAnyParens() => !IsLeaf && (ChildNeedsParens(L!, false) || ChildNeedsParens(R!, true) || L!.NeedsAnyParens() || R!.NeedsAnyParens());
    }

    /// <summary>How a problem is written: phrasing, spaces, separators, operator words or symbols.</summary>
    private sealed record Style(int Spacing, bool Commas, bool Words, double ParenNegative)
    {
        public static Style Draw(ref Xoshiro256 rng, bool words) =>
            new(Uniform(ref rng, 3), rng.NextDouble() < 0.25, words, rng.NextDouble());

        private static readonly string[] Openings =
        [
            "What is {0}?", "What is {0}?", "What is {0}?", "What is {0}", "what is {0}?", "What's {0}?",
            "Compute {0}.", "Compute {0}", "compute {0}", "Calculate {0}.", "Calculate {0}", "calculate {0}?",
            "{0} = ?", "{0}=?", "{0} =", "{0}", "{0}", "Evaluate {0}.",
        ];

        public string Phrase(string expression, ref Xoshiro256 rng) =>
            string.Format(CultureInfo.InvariantCulture, Openings[Uniform(ref rng, Openings.Length)], expression);

        public string Render(Node n, ref Xoshiro256 rng)
        {
            var sb = new StringBuilder();
            Write(sb, n, ref rng, afterOperator: false);
            return sb.ToString();
        }

        private void Write(StringBuilder sb, Node n, ref Xoshiro256 rng, bool afterOperator)
        {
            if (n.IsLeaf)
            {
                string digits = Math.Abs(n.Value).ToString(Commas && Math.Abs(n.Value) >= 1000 ? "#,0" : "0", CultureInfo.InvariantCulture);
                if (n.Value >= 0) sb.Append(digits);
                else if (afterOperator && rng.NextDouble() < ParenNegative) sb.Append("(-").Append(digits).Append(')');
                else sb.Append('-').Append(digits);
                return;
            }
            bool lp = n.ChildNeedsParens(n.L!, false), rp = n.ChildNeedsParens(n.R!, true);
            if (lp) sb.Append('(');
            Write(sb, n.L!, ref rng, afterOperator && !lp);
            if (lp) sb.Append(')');
            bool space = Words || Spacing == 1 || (Spacing == 2 && Uniform(ref rng, 2) == 0);
            string op = Words
                ? n.Op switch { '+' => "plus", '-' => "minus", '*' => Uniform(ref rng, 2) == 0 ? "times" : "multiplied by", _ => "divided by" }
                : n.Op.ToString();
            sb.Append(space ? " " : "").Append(op).Append(space ? " " : "");
            if (rp) sb.Append('(');
            Write(sb, n.R!, ref rng, afterOperator: !rp);
            if (rp) sb.Append(')');
        }
    }
}
