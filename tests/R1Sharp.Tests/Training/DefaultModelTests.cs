using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.Training;

/// <summary>The trained model committed in models/ is what chat, generate and eval run without --model.</summary>
public sealed class DefaultModelTests
{
    [Fact]
    public void GenerateWithoutModelThinksAndAnswers42()
    {
        var r = CliRunner.Run("generate", "--prompt", "What is 17+25?", "--temperature", "0", "--max-tokens", "128", "-t", "1");
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain("RANDOM", r.Stderr);
        int close = r.Stdout.IndexOf("</think>", StringComparison.Ordinal);
        Assert.True(close > 0, $"no reasoning block closed in: {r.Stdout}");
        Assert.Equal("42", r.Stdout[(close + "</think>".Length)..].Trim());
    }

    [Fact]
    public void EvalJsonReportsPassAt1()
    {
        var r = CliRunner.Run("eval", "--task", "arithmetic", "--n", "8", "--k", "2", "--seed", "11", "--json", "-t", "1");
        Assert.Equal(0, r.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        double pass = doc.RootElement.GetProperty("pass@1").GetDouble();
        Assert.InRange(pass, 0, 1);
        Assert.True(doc.RootElement.TryGetProperty("cons@2", out _));
    }
}
