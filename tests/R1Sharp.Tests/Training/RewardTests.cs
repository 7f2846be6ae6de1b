using R1Sharp.Training;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Tests.Training;

public sealed class RewardTests
{
    private static readonly ArithmeticTask Arith = new();
    private static Problem Sum(long a, long b) => ArithmeticTask.FromQuestion($"What is {a}+{b}?");

    [Theory]
    [InlineData("7+5=12\n</think>\n42", 1.0f, true, true)]                       // the R1 shape
    [InlineData("reasoning</think>\n\nThe answer is 42.", 1.0f, true, true)]       // one number in words
    [InlineData("x</think>\\boxed{42}", 1.0f, true, true)]                       // boxed wins
    [InlineData("x</think>\n17+25 = \\boxed{42}", 1.0f, true, true)]            // boxed wins over other numbers
    [InlineData("x</think>\n41", Reward.FormatOnly, false, true)]                // well-formed, wrong
    [InlineData("x</think>\n17+25=42", Reward.FormatOnly, false, true)]          // several numbers: no answer
    [InlineData("x</think>\n42 or 43", Reward.FormatOnly, false, true)]
    [InlineData("x</think>\n42.5", Reward.FormatOnly, false, true)]              // a decimal is not 42
    [InlineData("42", 0f, false, false)]                                         // no tags at all
    [InlineData("the sum is 42", 0f, false, false)]                              // unclosed think: no answer
    [InlineData("x</think>\n", 0f, false, false)]                                // nothing after the think block
    [InlineData("</think>\n42", 0f, false, false)]                               // no reasoning
    [InlineData("a</think>b</think>\n42", 0f, false, false)]                     // two closes
    [InlineData("<think>a</think>\n42", 0f, false, false)]                       // a second think opened
    [InlineData("x</think>\n42<｜end▁of▁sentence｜>", 1.0f, true, true)]       // eos text is ignored
    public void ArithmeticRewardOnTrickyOutputs(string completion, float reward, bool correct, bool wellFormed)
    {
        var r = Arith.Score(Sum(17, 25), completion);
        Assert.Equal(reward, r.Value);
        Assert.Equal(correct, r.Correct);
        Assert.Equal(wellFormed, r.WellFormed);
    }

    [Theory]
    [InlineData("The answer is 42.", 42L)]
    [InlineData("-17", -17L)]
    [InlineData("5-3", null)]
    [InlineData("1,234", 1234L)]                   // thousands separators
    [InlineData("-1,234,567", -1234567L)]
    [InlineData("\u22121,234", -1234L)]              // a minus sign
    [InlineData("1,23", null)]                     // not groups of three: two numbers
    [InlineData("1, 2", null)]
    [InlineData("12,3456", null)]
    [InlineData("\\boxed{1,234}", 1234L)]
    [InlineData("\\boxed{-333}", -333L)]
    [InlineData("x = \\boxed{ -12 }", -12L)]
    [InlineData("5 - -3 = 8", null)]
    [InlineData("42 and again 42", 42L)]
    [InlineData("no number", null)]
    [InlineData(null, null)]
    public void IntegerExtraction(string? answer, long? expected) => Assert.Equal(expected, Answers.Integer(answer));

    [Fact]
    public void WorkedSolutionsAreRewardedAndCorrectForManyProblems()
    {
        foreach (string name in TaskRegistry.Names)
        {
            var task = TaskRegistry.Get(name);
            for (int i = 0; i < 500; i++)
            {
                var p = task.Generate(TaskRegistry.TrainSeed(3, i));
                var r = task.Score(p, task.Solution(p));
                Assert.True(r.Correct && r.WellFormed && r.Value == 1f, $"{name}: {p.Prompt}\n{task.Solution(p)}");
            }
        }
    }

    [Fact]
    public void HeldOutSeedsAreDisjointFromTrainingSeeds()
    {
        Assert.True(TaskRegistry.TrainSeed(ulong.MaxValue, long.MaxValue) < TaskRegistry.HeldOutBase);
        Assert.True(TaskRegistry.HeldOutSeed(0, 0) >= TaskRegistry.HeldOutBase);
    }

    [Theory]
    [InlineData("(25-7)+3", true)]
    [InlineData("25-7+3", true)]
    [InlineData("3+25-7 = 21", true)]
    [InlineData("25-7", false)]              // a number unused
    [InlineData("25-7+3+3", false)]          // a number used twice
    [InlineData("25*7+3", false)]            // wrong value
    [InlineData("(25-7+3", false)]           // unbalanced
    [InlineData("25/0+3+7", false)]
    public void CountdownChecksNumbersAndValue(string expr, bool ok) => Assert.Equal(ok, CountdownTask.Check(expr, [3, 7, 25], 21));

    [Fact]
    public void GroupAdvantages()
    {
        float[] r = [1, 0, 0, 1];
        Assert.Equal([1, -1, -1, 1], GrpoTrainer.Advantages(r, GrpoLoss.Grpo), new FloatNear(1e-3f));
        Assert.Equal([0.5f, -0.5f, -0.5f, 0.5f], GrpoTrainer.Advantages(r, GrpoLoss.DrGrpo), new FloatNear(1e-6f));
        Assert.All(GrpoTrainer.Advantages([0.1f, 0.1f, 0.1f], GrpoLoss.Grpo), a => Assert.Equal(0f, a));
    }

    [Fact]
    public void ClippedSurrogateAndKl()
    {
        // on-policy (ρ = 1) and at the reference: the gradient is −A and the KL term vanishes
        var (g, l, clipped) = GrpoTrainer.TokenLoss(-1f, -1f, -1f, 2f, 0.2f, 0.2f, 0.1f);
        Assert.Equal(-2f, g, 1e-6f);
        Assert.Equal(-2f, l, 1e-6f);
        Assert.False(clipped);
        // ρ = 1.5 > 1 + ε with A > 0: the clipped branch is smaller, no policy gradient
        (g, _, clipped) = GrpoTrainer.TokenLoss(MathF.Log(1.5f), 0f, MathF.Log(1.5f), 1f, 0.2f, 0.28f, 0f);
        Assert.True(clipped);
        Assert.Equal(0f, g);
        // ρ = 1.25 is inside DAPO's clip-higher range (ε_high 0.28) but outside 0.2
        Assert.False(GrpoTrainer.TokenLoss(MathF.Log(1.25f), 0f, 0f, 1f, 0.2f, 0.28f, 0f).Clipped);
        Assert.True(GrpoTrainer.TokenLoss(MathF.Log(1.25f), 0f, 0f, 1f, 0.2f, 0.2f, 0f).Clipped);
        // k3 = e^d − d − 1 ≥ 0 and its gradient β(1 − e^d) against finite differences
        float lp = -0.7f, lr = -1.2f, h = 1e-3f, beta = 0.5f;
        float num = (GrpoTrainer.TokenLoss(lp + h, lp, lr, 0f, 0.2f, 0.2f, beta).Loss - GrpoTrainer.TokenLoss(lp - h, lp, lr, 0f, 0.2f, 0.2f, beta).Loss) / (2 * h);
        Assert.Equal(num, GrpoTrainer.TokenLoss(lp, lp, lr, 0f, 0.2f, 0.2f, beta).Grad, 2e-3f);
    }

    private sealed class FloatNear(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float f) => 0;
    }
}
