using R1Sharp.Training.Tasks;

namespace R1Sharp.Tests.Training;

/// <summary>Where a wrong completion first departs from the worked solution, and how that line and field are named.</summary>
public sealed class FirstErrorTests
{
    private static string Worked(string question) => WorkedSolution.Write(Expression.Parse(question)!, format: 1);

    /// <summary>The reference with line <paramref name="index"/> replaced (and everything after it dropped).</summary>
    private static string Departing(string reference, int index, string line) =>
        string.Join('\n', reference.Split('\n').Take(index).Append(line).Append("...\n</think>\n1"));

    [Fact]
    public void TheReferenceItselfHasNoError()
    {
        string r = Worked("1234*56");
        Assert.Null(FirstError.Find(r, r));
        Assert.Null(FirstError.Find(r, r + "\n")); // trailing whitespace after the answer is no departure
    }

    [Theory]
    // 1234*56: line 0 the expression, 1 the first pass's first line, 2-5 its columns, 6 the second pass's first line
    [InlineData("1234*56", 0, "1234*65", "expression", "line")]
    [InlineData("1234*56", 1, "1234*6|5 c0 =", "mul start", "digit of the factor")]
    [InlineData("1234*56", 2, "123*5 c1 =0", "mul column", "carry")]
    [InlineData("1234*56", 3, "12*5 c1 =60", "mul column", "digits")]
    [InlineData("1234*56", 3, "13*5 c1 =70", "mul column", "operands")]
    [InlineData("1234*56", 6, "61800+1234*6 c0 =", "mul pass start", "ten times the result so far")]
    [InlineData("1234*56", 7, "6170+123*6 c2 =5", "mul pass column", "digits")]
    [InlineData("1234*56", 7, "6170+123*6 c2 =", "mul pass column", "digits")]
    [InlineData("1234*56", 7, "6170 c2 =4", "mul pass column", "line")]
    [InlineData("12-345", 1, "345-12 b0 =", "sub start", "sign")]
    [InlineData("12-345", 2, "34-1 b1 =-3", "sub column", "borrow")]
    [InlineData("347+589", 2, "34+58 c1 =5", "add column", "digits")]
    [InlineData("98769/123", 1, "98769/123 =-", "div start", "sign")]
    [InlineData("98769/123", 2, "1:123 2:246 3:369 4:492 5:615 6:738 7:861 8:985 9:1107", "div multiples", "line")]
    [InlineData("98769/123", 5, "69 987-861 r126 =007", "div digit", "multiple")]
    [InlineData("2+3*4", 4, "2+11", "expression after an operation", "line")]
    public void TheFirstDifferingLineIsNamedByItsRoleAndField(string question, int index, string line, string kind, string field)
    {
        string r = Worked(question);
        var e = FirstError.Find(r, Departing(r, index, line));
        Assert.NotNull(e);
        Assert.Equal(index, e.Line);
        Assert.Equal(kind, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.Equal(r.Split('\n')[index], e.Expected);
        Assert.Equal(line, e.Got);
    }

    [Fact]
    public void ACompletionThatStopsEarlyIsMissingALine()
    {
        string r = Worked("12-345");
        var e = FirstError.Find(r, "12-345\n345-12 b0 =-");
        Assert.NotNull(e);
        Assert.Equal(("sub column", "missing", 2), (e.Kind, e.Field, e.Line));
        Assert.Null(e.Got);
    }

    [Fact]
    public void AWrongAnswerAfterARightReasoningIsAnAnswerError()
    {
        string r = Worked("12-345");
        var e = FirstError.Find(r, r[..r.LastIndexOf('\n')] + "\n333");
        Assert.NotNull(e);
        Assert.Equal("answer", e.Kind);
    }

    [Fact]
    public void MoreAfterTheAnswerIsAnAnswerError()
    {
        string r = Worked("12-345");
        var e = FirstError.Find(r, r + "\n5");
        Assert.NotNull(e);
        Assert.Equal(("answer", "line", "-333\n5"), (e.Kind, e.Field, e.Got));
    }

    [Fact]
    public void AnArithmeticQuestionAnsweredWithTheRefusalDepartsAtTheExpression()
    {
        string r = Worked("2+2");
        var e = FirstError.Find(r, $"{ArithmeticTask.NotArithmetic}\n</think>\n{ArithmeticTask.Refusal}");
        Assert.NotNull(e);
        Assert.Equal(("expression", "line", 0), (e.Kind, e.Field, e.Line));
    }
}
