// The chat-format flags of generate and chat (--template, --no-think, --think-budget, --reasoning-format) on a tiny
// random-weight R1-vocabulary model: its text is noise, but where the tags go and which stream gets what is not.
using R1Sharp.Chat;

namespace R1Sharp.Tests.Cli;

public sealed class ChatFormatCliTests : IClassFixture<CliTests.TinyModel>
{
    private readonly CliTests.TinyModel _tiny;

    public ChatFormatCliTests(CliTests.TinyModel tiny) => _tiny = tiny;

    private string[] Generate(params string[] extra) =>
        ["generate", "--model", _tiny.Path, "--prompt", "hello", "--max-tokens", "24", "--seed", "3", "--temperature", "1", .. extra];

    [Fact]
    public void GenerateEchoesTheThinkBlockThePromptOpened()
    {
        var r = CliRunner.Run(Generate());
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("<think>\n", r.Stdout);

        var off = CliRunner.Run(Generate("--no-think"));
        Assert.Equal(0, off.ExitCode);
        Assert.False(off.Stdout.StartsWith("<think>", StringComparison.Ordinal));

        var raw = CliRunner.Run(Generate("--raw"));
        Assert.Equal(0, raw.ExitCode);
        Assert.False(raw.Stdout.StartsWith("<think>", StringComparison.Ordinal));
    }

    [Fact]
    public void ThinkBudgetForcesTheCloseAndSeparateSplitsAsTheParserDoes()
    {
        var none = CliRunner.Run(Generate("--think-budget", "4"));
        Assert.Equal(0, none.ExitCode);
        Assert.Contains("\n</think>\n\n", none.Stdout);

        var separate = CliRunner.Run(Generate("--think-budget", "4", "--reasoning-format", "separate"));
        Assert.Equal(0, separate.ExitCode);
        // the raw text (with the echoed <think>) parsed afresh gives the two streams
        var parser = new ReasoningParser(startsInReasoning: false);
        parser.Push(none.Stdout[..^1]);
        parser.Flush();
        Assert.False(parser.InReasoning);
        Assert.NotEmpty(parser.Reasoning);
        Assert.Equal(parser.Reasoning + "\n", separate.Stderr);
        Assert.Equal(parser.Content + "\n", separate.Stdout);
    }

    [Fact]
    public void ChatShowsReasoningThenAnswer()
    {
        var r = CliRunner.RunWithInput("hi\nand again\n", "chat", "--model", _tiny.Path, "--max-tokens", "16", "--think-budget", "3",
            "--seed", "1", "--temperature", "1");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("<think>\n", r.Stdout);
        Assert.Equal(2, r.Stdout.Split("\n</think>\n").Length - 1);

        var chatml = CliRunner.RunWithInput("hi\n", "chat", "--model", _tiny.Path, "--max-tokens", "8", "--template", "chatml", "--seed", "1");
        Assert.Equal(0, chatml.ExitCode);
    }

    [Theory]
    [InlineData("--template", "mistral")]
    [InlineData("--raw", "--template", "r1")]
    [InlineData("--raw", "--no-think")]
    [InlineData("--think-budget", "-1")]
    [InlineData("--reasoning-format", "json")]
    public void BadChatFormatFlagsAreOneLineErrors(params string[] flags)
    {
        var r = CliRunner.Run(Generate(flags));
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
    }
}
