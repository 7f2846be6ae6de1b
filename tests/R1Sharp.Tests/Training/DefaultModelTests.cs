using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Tests.Cli;
using R1Sharp.Training;
using R1Sharp.Training.Tasks;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Training;

/// <summary>The trained model committed in models/ is what chat, generate and eval run without --model.</summary>
public sealed class DefaultModelTests(ITestOutputHelper output)
{
    /// <summary>Fixed questions of every category, typed as a person would. The shipped model's held-out pass@1 is
    /// 0.78-1.00 by category (docs/training.md): it must answer all of these correctly, and every result is printed.
    /// (The flag allows holding a category to well-formed answers alone: reasoning, then one integer.)</summary>
    public static TheoryData<string, bool, string[]> Questions => new()
    {
        { "add", true, ["What is 1234+5678?", "Compute 48,213 + 975,604.", "305+98=?"] },
        { "sub", true, ["What is 12-345?", "Calculate 90210 - 4567.", "1000-999"] },
        { "multi-operand", true, ["What is 10-4-3?", "Compute 12+345+6789.", "2*3*4*5"] },
        { "negative", true, ["What is -12+5?", "7 - (-3)", "What is -8*-9?"] },
        { "refusal", true, ["Hello, who are you?", "What is the capital of France?", "What is 2^10?"] },
        { "mul", true, ["What is 12*34?", "Compute 1234*56.", "7 * 809 = ?"] },
        { "div", true, ["What is 98769/123?", "Calculate 4,536 / 7.", "What is 1000/8?"] },
        { "precedence", true, ["What is 2+3*4?", "Compute 100-36/4+7.", "5*6-8/2"] },
        { "parentheses", true, ["(3 + 4) * 5 = ?", "What is 2*(30-18)?", "Calculate (120-20)/(4+1)."] },
        { "words", true, ["What is 12 times 34?", "Compute 45 plus 17 minus 9.", "What is 144 divided by 12?"] },
    };

    private static readonly Lazy<LoadedModel> s_model = new(() =>
        LoadedModel.Load(Path.Combine(AppContext.BaseDirectory, "models", "r1sharp-arith.gguf"), threads: 1));

    [Theory]
    [MemberData(nameof(Questions))]
    public void TheDefaultModelAnswersFixedQuestionsOfEveryCategory(string category, bool mustBeRight, string[] questions)
    {
        var lm = s_model.Value;
        var problems = questions.Select(ArithmeticTask.FromQuestion).ToList();
        Assert.All(problems, p => Assert.Equal(category == "refusal", p.Answer == ""));
        var completions = Rollout.Generate(lm, [.. problems.Select(p => TaskVocab.EncodePrompt(lm.Tokenizer, p))], 1,
            new SamplingParams { Temperature = 0 }, 1024, 1);
        var task = new ArithmeticTask();
        var failed = new List<string>();
        for (int i = 0; i < problems.Count; i++)
        {
            var r = task.Score(problems[i], completions[i].Text);
            output.WriteLine($"{(r.Correct ? "right" : "WRONG")}: {questions[i]} (expected '{problems[i].Answer}') -> {completions[i].Text}");
            bool ok = mustBeRight ? r.Correct : r.WellFormed && Answers.Integer(r.Answer) != null;
            if (!ok) failed.Add(questions[i]);
        }
        Assert.Empty(failed);
    }

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
    public void ChatThroughAPipeAnswersANegativeDifference()
    {
        // printf 'What is 12-345?\n' | r1sharp chat: the default sampling (temperature 0.6), seeded here
        var r = CliRunner.RunWithInput("What is 12-345?\n", "chat", "--seed", "1", "-t", "1");
        Assert.Equal(0, r.ExitCode);
        int close = r.Stdout.IndexOf("</think>", StringComparison.Ordinal);
        Assert.True(close > 0, $"no reasoning block closed in: {r.Stdout}");
        Assert.Equal("-333", r.Stdout[(close + "</think>".Length)..].Trim());
    }

    [Fact]
    public void EvalJsonReportsPassAt1()
    {
        var r = CliRunner.Run("eval", "--task", "arithmetic", "--n", "8", "--k", "2", "--seed", "11", "--json", "--per-problem", "-t", "1");
        Assert.Equal(0, r.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        double pass = doc.RootElement.GetProperty("pass@1").GetDouble();
        Assert.InRange(pass, 0, 1);
        Assert.True(doc.RootElement.TryGetProperty("cons@2", out _));
        // every wrong arithmetic completion is named by the line where it first departs from the worked solution
        int wrong = (int)Math.Round((1 - pass) * 16), named = 0;
        foreach (var e in doc.RootElement.GetProperty("first_errors").EnumerateObject()) named += e.Value.GetInt32();
        Assert.Equal(wrong, named);
        // --per-problem: each problem's pass@1, whose mean is the pass@1
        var each = doc.RootElement.GetProperty("per_problem").EnumerateArray().Select(x => x.GetDouble()).ToList();
        Assert.Equal(8, each.Count);
        Assert.Equal(pass, each.Average(), 3);
    }

    [Fact]
    public void EvalPerProblemWithoutJsonIsRefused()
    {
        var r = CliRunner.Run("eval", "--task", "arithmetic", "--n", "2", "--per-problem", "-t", "1");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--per-problem goes with --json", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}
