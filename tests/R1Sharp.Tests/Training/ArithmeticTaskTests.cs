using R1Sharp.Chat;
using R1Sharp.Training;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Tests.Training;

/// <summary>The arithmetic task: reading questions, the worked solutions, the generators and the rewards of every category.</summary>
public sealed class ArithmeticTaskTests
{
    private static readonly ArithmeticTask Task = new() { Format = 1 };

    [Theory]
    [InlineData("What is 12-345?", "12-345", -333L)]
    [InlineData("What is 1234+5678?", "1234+5678", 6912L)]
    [InlineData("What is 2+3*4?", "2+3*4", 14L)]
    [InlineData("What is 12 times 34?", "12*34", 408L)]
    [InlineData("Compute 1,234 multiplied by 5.", "1234*5", 6170L)]
    [InlineData("calculate 98,769 divided by 123", "98769/123", 803L)]
    [InlineData("(3 + 4) * 5 = ?", "(3+4)*5", 35L)]
    [InlineData("7 - (-3)", "7--3", 10L)]
    [InlineData("-12 plus 5 minus -7=?", "-12+5--7", 0L)]
    [InlineData("what's 100/4/5?", "100/4/5", 5L)]
    [InlineData("10-4-3", "10-4-3", 3L)]
    [InlineData("2*(3+(4-6))*5", "2*(3+(4-6))*5", 10L)]
    [InlineData("Evaluate 6 × 7.", "6*7", 42L)]
    [InlineData("1,000,000 - 1", "1000000-1", 999999L)]
    public void QuestionsReadAsTheirCanonicalExpression(string question, string canonical, long value)
    {
        var e = Expression.Parse(question);
        Assert.NotNull(e);
        Assert.Equal(canonical, e.ToString());
        Assert.Equal(value, e.Evaluate());
    }

    [Theory]
    [InlineData("Hello, who are you?")]
    [InlineData("What is 2.5+1?")]
    [InlineData("What is 2^10?")]
    [InlineData("What is 12?")]
    [InlineData("What is the capital of France?")]
    [InlineData("What is 3 apples plus 4 apples?")]
    [InlineData("1,23+4")]
    [InlineData("(3+4")]
    [InlineData("3+*4")]
    public void NonExpressionsAreNotParsed(string question) => Assert.Null(Expression.Parse(question));

    [Fact]
    public void PrecedenceOrderOfOperations()
    {
        var e = Expression.Parse("7+3*(12-45)/11-2")!;
        Assert.Equal(["12-45", "3*-33", "-99/11", "7+-9", "-2-2"], e.Steps().Select(op => $"{op.A}{op.Op}{op.B}").ToArray());
        Assert.Equal(-4L, e.Evaluate());
    }

    private static string Worked(string question) => Task.Solution(ArithmeticTask.FromQuestion(question));

    [Fact]
    public void SubtractionWithANegativeResultCarriesTheSign()
    {
        Assert.Equal("12-345\n345-12 b0 =-\n34-1 b0 =-3\n3- b0 =-33\n- b0 =-333\n-333\n</think>\n-333", Worked("What is 12-345?"));
        // equal magnitudes of opposite signs give an unsigned zero
        Assert.Equal("-5+5\n5-5 b0 =\n- b0 =0\n0\n</think>\n0", Worked("-5+5"));
    }

    [Fact]
    public void AdditionOfNegativesAndSubtractionOfANegative()
    {
        Assert.Equal("-47+-85\n47+85 c0 =-\n4+8 c1 =-2\n+ c1 =-32\n+ c0 =-132\n-132\n</think>\n-132", Worked("-47 + -85"));
        Assert.Equal("7--3\n7+3 c0 =\n+ c1 =0\n+ c0 =10\n10\n</think>\n10", Worked("7 - (-3)"));
    }

    [Fact]
    public void MultiplicationIsHornersSchemeOverTheShorterFactor()
    {
        Assert.Equal("1234*56\n" +
                     "1234*5|6 c0 =\n123*5 c2 =0\n12*5 c1 =70\n1*5 c1 =170\n*5 c0 =6170\n" +
                     "61700+1234*6 c0 =\n6170+123*6 c2 =4\n617+12*6 c2 =04\n61+1*6 c2 =104\n6+*6 c0 =9104\n+*6 c0 =69104\n" +
                     "69104\n</think>\n69104", Worked("1234*56"));
        // the longer factor is the one multiplied, whichever comes first; the sign is fixed on the first line
        Assert.Equal("-2*448\n448*2 c0 =-\n44*2 c1 =-6\n4*2 c0 =-96\n*2 c0 =-896\n-896\n</think>\n-896", Worked("-2*448"));
    }

    [Fact]
    public void LongDivisionWritesTheMultiplesThenOneLinePerDigit()
    {
        Assert.Equal("98769/123\n98769/123 =\n1:123 2:246 3:369 4:492 5:615 6:738 7:861 8:984 9:1107\n" +
                     "8769 9-0 r9 =0\n769 98-0 r98 =00\n69 987-984 r3 =008\n9 36-0 r36 =0080\n 369-369 r0 =00803\n" +
                     "803\n</think>\n803", Worked("What is 98769/123?"));
        Assert.EndsWith("-12\n</think>\n-12", Worked("84 divided by -7"));
    }

    [Fact]
    public void EachOperationIsFollowedByTheReducedExpression()
    {
        string[] lines = Worked("What is 2+3*4?").Split('\n');
        Assert.Equal("2+3*4", lines[0]);
        Assert.Contains("2+12", lines);
        Assert.Equal(["14", "</think>", "14"], lines[^3..]);
    }

    [Fact]
    public void OffDomainQuestionsGetTheRefusalWithoutANumber()
    {
        var p = ArithmeticTask.FromQuestion("Hello, who are you?");
        string s = Task.Solution(p);
        Assert.Equal($"{ArithmeticTask.NotArithmetic}\n</think>\n{ArithmeticTask.Refusal}", s);
        Assert.DoesNotContain(s, char.IsAsciiDigit);
    }

    [Theory]
    [InlineData("What is 12-345?", "x</think>\n-333", true)]
    [InlineData("What is 12-345?", "x</think>\n333", false)]
    [InlineData("What is 12-345?", "x</think>\nThe answer is \\boxed{-333}.", true)]
    [InlineData("What is 1234*5678?", "x</think>\n7,006,652", true)]
    [InlineData("What is 1234*5678?", "x</think>\n7006652.0", false)]
    [InlineData("What is 98769/123?", "x</think>\n803", true)]
    [InlineData("What is 7 - (-3)?", "x</think>\n10", true)]
    [InlineData("What is 7 - (-3)?", "x</think>\n" + ArithmeticTask.Refusal, false)]
    [InlineData("Hello, who are you?", "x</think>\n" + ArithmeticTask.Refusal, true)]
    [InlineData("Hello, who are you?", "x</think>\nI am number 1.", false)]
    [InlineData("What is 2^10?", "x</think>\n1024", false)]
    [InlineData("What is 2^10?", "x</think>\nI do not do powers.", true)]
    public void RewardsCheckTheFinalAnswerExactly(string question, string completion, bool correct)
    {
        var r = Task.Score(ArithmeticTask.FromQuestion(question), completion);
        Assert.Equal(correct, r.Correct);
        Assert.True(r.WellFormed);
        Assert.Equal(correct ? 1f : Reward.FormatOnly, r.Value);
        Assert.Equal(0f, Task.Score(ArithmeticTask.FromQuestion(question), completion.Replace("</think>", "")).Value); // malformed
    }

    [Fact]
    public void EveryCategoryGeneratesInDomainProblemsWhoseQuestionReadsBackAndWhoseSolutionScores()
    {
        foreach (string category in ArithmeticTask.Categories)
        {
            for (int i = 0; i < 300; i++)
            {
                var p = Task.Generate(TaskRegistry.TrainSeed(7, i), category);
                Assert.Equal(category, p.Kind);
                var q = (ArithmeticTask.Question)p.Data;
                var parsed = Expression.Parse(p.Prompt);
                if (category == "refusal")
                {
                    Assert.Null(q.Expression);
                    Assert.Null(parsed);
                    Assert.Equal("", p.Answer);
                }
                else
                {
                    Assert.NotNull(parsed);
                    Assert.Equal(q.Expression!.ToString(), parsed.ToString());
                    Assert.True(ArithmeticTask.InDomain(parsed, out long v), p.Prompt);
                    Assert.Equal(v.ToString(), p.Answer);
                }
                var r = Task.Score(p, Task.Solution(p));
                Assert.True(r.Correct && r.WellFormed, $"{category}: {p.Prompt}\n{Task.Solution(p)}");
            }
        }
    }

    [Fact]
    public void CategoriesHaveTheirShape()
    {
        for (int i = 0; i < 200; i++)
        {
            Expression E(string c) => ((ArithmeticTask.Question)Task.Generate(TaskRegistry.TrainSeed(8, i), c).Data).Expression!;
            var add = E("add");
            Assert.Equal(1, add.Operations);
            Assert.All(add.Terms.Where(t => t.Kind == TermKind.Number), t => Assert.InRange(t.Value, 0, 999_999));
            var div = E("div").Steps().Single();
            Assert.Equal('/', div.Op);
            Assert.InRange(div.B, 1, 999);
            Assert.Equal(0, div.A % div.B);
            var mul = E("mul").Steps().Single();
            Assert.InRange(mul.A, 0, 9999);
            Assert.InRange(mul.B, 0, 9999);
            Assert.InRange(E("precedence").Operations, 2, 3);
            Assert.DoesNotContain(E("precedence").Terms, t => t.Kind == TermKind.Open);
            Assert.Contains(E("parentheses").Terms, t => t.Kind == TermKind.Open);
            Assert.Contains(E("negative").Terms, t => t.Kind == TermKind.Number && t.Value < 0);
            var multi = E("multi-operand");
            Assert.InRange(multi.Operations, 2, 3);
            Assert.True(multi.Terms.Where(t => t.Kind == TermKind.Operator).Select(t => t.Op is '+' or '-').Distinct().Count() == 1);
        }
        Assert.Contains(Enumerable.Range(0, 50).Select(i => Task.Generate(TaskRegistry.TrainSeed(8, i), "words").Prompt),
            q => q.Contains("times") || q.Contains("plus") || q.Contains("minus") || q.Contains("divided by") || q.Contains("multiplied by"));
    }

    [Fact]
    public void TheMixCoversEveryCategoryAndSomeConversations()
    {
        var problems = Enumerable.Range(0, 2000).Select(i => Task.Generate(TaskRegistry.HeldOutSeed(0, i))).ToList();
        foreach (string c in ArithmeticTask.Categories) Assert.True(problems.Count(p => p.Kind == c) >= 50, c);
        var withHistory = problems.Where(p => p.History.Count > 0).ToList();
        Assert.InRange(withHistory.Count, 200, 400);
        Assert.All(withHistory, p => Assert.Equal(["user", "assistant"], p.History.Take(2).Select(m => m.Role)));
    }

    [Fact]
    public void AQuestionAfterEarlierTurnsHasTheSameSolution()
    {
        var p = Task.Generate(TaskRegistry.TrainSeed(1, 0));
        for (int i = 1; p.History.Count == 0; i++) p = Task.Generate(TaskRegistry.TrainSeed(1, i));
        var alone = p with { History = [] };
        Assert.Equal(Task.Solution(alone), Task.Solution(p));
        var tok = new R1Sharp.Tokenization.BpeTokenizer(TaskVocab.Build());
        string rendered = tok.Decode(TaskVocab.EncodePrompt(tok, p));
        Assert.EndsWith($"{R1ChatTemplate.User}{p.Prompt}{R1ChatTemplate.Assistant}{R1ChatTemplate.ThinkOpen}\n", rendered);
        Assert.Contains($"{R1ChatTemplate.Assistant}{p.History[1].Content}{R1ChatTemplate.EndOfSentence}", rendered);
    }

    [Fact]
    public void GeneratorsAreSeededAndHeldOutSeedsNeverMeetTrainingSeeds()
    {
        Assert.Equal(Task.Generate(12345).Prompt, Task.Generate(12345).Prompt);
        Assert.True(Enumerable.Range(0, 20).Select(i => Task.Generate((ulong)i).Prompt).Distinct().Count() > 15);
        // training draws seed·2^20 + index below 2^40; held-out problems start at 2^48
        Assert.True(TaskRegistry.TrainSeed(ulong.MaxValue, long.MaxValue) < TaskRegistry.HeldOutBase);
        Assert.True(TaskRegistry.HeldOutSeed(0, 0) >= TaskRegistry.HeldOutBase);
        var train = Enumerable.Range(0, 20000).Select(i => TaskRegistry.TrainSeed(1, i)).ToHashSet();
        Assert.DoesNotContain(Enumerable.Range(0, 2000).Select(i => TaskRegistry.HeldOutSeed(7, i)), train.Contains);
    }
}
