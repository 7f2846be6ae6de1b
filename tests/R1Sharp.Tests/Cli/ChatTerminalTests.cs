// chat as a person uses it: on a terminal (tmux: type, read the screen) and through a pipe. The tiny random-weight
// model writes noise; greedy decoding and a thinking budget make every reply hold reasoning and then an answer.
using System.Text.Json;

namespace R1Sharp.Tests.Cli;

public sealed class ChatTerminalTests : IClassFixture<CliTests.TinyModel>
{
    private readonly CliTests.TinyModel _tiny;

    public ChatTerminalTests(CliTests.TinyModel tiny) => _tiny = tiny;

    private string[] Chat(params string[] flags) =>
        ["dotnet", Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "chat", "--model", _tiny.Path, "--temperature", "0", "-t", "1", .. flags];

    [Fact]
    public void OnATerminalTheReasoningCollapsesToASummaryAndCommandsWork()
    {
        string saved = Path.Combine(_tiny.Dir, "conversation.json");
        using var tmux = Tmux.Start(Chat("--max-tokens", "24", "--think-budget", "6"));
        tmux.WaitFor("/help lists commands");

        tmux.Line("What is 17+25?");
        string screen = tmux.WaitFor("tok/s");
        Assert.Contains("> What is 17+25?", screen);
        Assert.Contains("▸ thought for ", screen);   // the live block collapsed to one line
        Assert.Contains("/thoughts shows it", screen);
        Assert.DoesNotContain("thinking…", screen);    // and left nothing behind
        Assert.DoesNotContain("<think>", screen);

        tmux.Line("/thoughts");
        tmux.WaitFor("│ ");

        tmux.Line("/think off");
        tmux.WaitFor("(thinking off)");
        tmux.Line("\"\"\"");
        tmux.Line("first line");
        tmux.Line("second line");
        tmux.Line("\"\"\"");
        screen = tmux.WaitFor(s => Tmux.Count(s, "tok/s") == 2, "the second answer finished");
        Assert.Equal(1, Tmux.Count(screen, "thought for"));   // thinking off: no reasoning the second time
        Assert.Contains("… ", screen);                        // the continuation prompt of the block

        tmux.Line("/nonsense");
        tmux.WaitFor("unknown command /nonsense");
        tmux.Line("/help");
        tmux.WaitFor("/budget N|off");
        tmux.Line($"/save {saved}");
        tmux.WaitFor("(saved 4 messages");
        tmux.Line("/exit");
        tmux.WaitFor("[exited 0]");

        var messages = JsonDocument.Parse(File.ReadAllText(saved)).RootElement.GetProperty("messages");
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Equal("What is 17+25?", messages[0].GetProperty("content").GetString());
        Assert.Equal("first line\nsecond line", messages[2].GetProperty("content").GetString());
        Assert.NotEmpty(messages[1].GetProperty("reasoning_content").GetString()!);
        Assert.False(messages[3].TryGetProperty("reasoning_content", out _));
    }

    [Fact]
    public void CtrlCStopsTheAnswerNotTheProgram()
    {
        // thinking with no budget on a random model goes on for thousands of tokens: long enough to interrupt
        using var tmux = Tmux.Start(Chat("--max-tokens", "4000", "--ctx", "4096"));
        tmux.WaitFor("/help lists commands");
        tmux.Line("Tell me a long story.");
        tmux.WaitFor("thinking…");
        tmux.Press("C-c");
        string screen = tmux.WaitFor("(stopped)");
        Assert.Contains("(no answer)", screen);
        Assert.DoesNotContain("[exited", screen);
        tmux.Press("C-d");
        tmux.WaitFor("[exited 0]");
    }

    [Fact]
    public void ThroughAPipeTheReasoningIsAMarkedBlockAndEndOfInputExits()
    {
        string input = "What is 17+25?\n/budget 0\n\"\"\"\ntwo\nlines\n\"\"\"\n/bogus\n";
        var r = CliRunner.RunWithInput(input, "chat", "--model", _tiny.Path, "--temperature", "0", "--max-tokens", "16", "--think-budget", "4", "-t", "1");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("<think>\n", r.Stdout);
        Assert.Equal(1, Tmux.Count(r.Stdout, "<think>\n"));
        Assert.Equal(1, Tmux.Count(r.Stdout, "\n</think>\n\n"));
        Assert.DoesNotContain("\x1b[", r.Stdout);   // no escape codes into a pipe
        Assert.Equal(2, Tmux.Count(r.Stderr, " tok/s"));
        Assert.Contains("(thinking off)", r.Stderr);
        Assert.Contains("unknown command /bogus", r.Stderr);
        Assert.DoesNotContain("> ", r.Stderr);        // no prompts when nobody types
    }

    [Fact]
    public void TheDefaultModelChatsThroughAPipe()
    {
        // no --model: the default model from models/, or the tiny random stand-in while none is installed
        var r = CliRunner.RunWithInput("What is 17+25?\n", "chat", "--max-tokens", "48", "--think-budget", "16", "--temperature", "0");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("<think>\n", r.Stdout);
        Assert.Contains("\n</think>\n", r.Stdout);
        Assert.DoesNotContain("error", r.Stderr);
    }

    [Fact]
    public void QuantizeShowsABarOnATerminalAndOneLineInAPipe()
    {
        string piped = Path.Combine(_tiny.Dir, "piped-q8.gguf");
        var r = CliRunner.Run("quantize", _tiny.Path, piped, "--type", "q8_0");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.StartsWith("wrote ", Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));

        string shown = Path.Combine(_tiny.Dir, "terminal-q8.gguf");
        using var tmux = Tmux.Start(["dotnet", Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "quantize", _tiny.Path, shown, "--type", "q8_0"]);
        string screen = tmux.WaitFor("[exited 0]");
        Assert.Contains("100%", screen);
        Assert.Contains("quantizing to q8_0", screen);
        Assert.Contains("wrote ", screen);
    }
}
