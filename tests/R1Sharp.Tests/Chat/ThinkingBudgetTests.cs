// The thinking budget: the close tokens come once, right after the last reasoning token the budget allows.
using R1Sharp.Chat;

namespace R1Sharp.Tests.Chat;

public class ThinkingBudgetTests
{
    private static readonly int[] s_close = [198, 151649, 271];

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(50)]
    public void ClosesOnceAfterTheBudget(int budget)
    {
        var b = new ThinkingBudget(budget, s_close);
        for (int i = 1; i < budget; i++) Assert.Null(b.Next(inReasoning: true));
        Assert.False(b.Exhausted);
        Assert.Equal(s_close, b.Next(inReasoning: true));
        Assert.True(b.Exhausted);
        Assert.Equal(budget, b.Spent);
        for (int i = 0; i < 5; i++) Assert.Null(b.Next(inReasoning: true));
    }

    [Fact]
    public void AnswerTokensDoNotCount()
    {
        var b = new ThinkingBudget(2, s_close);
        Assert.Null(b.Next(inReasoning: false));
        Assert.Null(b.Next(inReasoning: true));
        Assert.Null(b.Next(inReasoning: false));
        Assert.Equal(1, b.Spent);
        Assert.Equal(s_close, b.Next(inReasoning: true));
    }

    [Fact]
    public void AModelThatStopsThinkingInTimeIsLeftAlone()
    {
        var b = new ThinkingBudget(3, s_close);
        Assert.Null(b.Next(true));
        Assert.Null(b.Next(true));
        for (int i = 0; i < 10; i++) Assert.Null(b.Next(false));
        Assert.False(b.Exhausted);
    }

    [Fact]
    public void ForcedCloseEndsTheReasoningInTheParser()
    {
        // what the CLI does: a token at a time, and the close text pushed as if the model had written it
        string[] tokens = ["Let", " me", " think", " about", " this", " for", " a", " while"];
        var parser = new ReasoningParser(startsInReasoning: true);
        var budget = new ThinkingBudget(4, s_close);
        int i = 0;
        for (; i < tokens.Length; i++)
        {
            parser.Push(tokens[i]);
            if (budget.Next(parser.InReasoning) is not null)
            {
                parser.Push("\n</think>\n\n");
                break;
            }
        }
        Assert.Equal(3, i);
        Assert.False(parser.InReasoning);
        parser.Push("Answer.");
        parser.Flush();
        Assert.Equal("Let me think about", parser.Reasoning);
        Assert.Equal("Answer.", parser.Content);
    }

    [Fact]
    public void ZeroClosesAfterTheFirstReasoningToken()
    {
        var b = new ThinkingBudget(0, s_close);
        Assert.Null(b.Next(inReasoning: false));
        Assert.Equal(s_close, b.Next(inReasoning: true));
        Assert.Null(b.Next(inReasoning: true));
    }

    [Fact]
    public void RejectsANegativeBudgetAndNoCloseTokens()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThinkingBudget(-1, s_close));
        Assert.Throws<ArgumentException>(() => new ThinkingBudget(5, []));
    }
}
