// The split and merge verbs as a user runs them: the plan on stdout, parts any verb loads from any part, a merge
// that gives the same logits, and one-line errors for bad options and broken splits.
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Cli;

public sealed class SplitCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-splitcli-").FullName;
    private readonly string _model;

    public SplitCliTests()
    {
        _model = Path.Combine(_dir, "tiny.gguf");
        Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.Q8_0, 3, _model);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private static void AssertCleanError(CliRunner.Result r, string contains)
    {
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(contains, lines[0]);
    }

    private static string Logits(string model)
    {
        var r = CliRunner.Run("logits", "--model", model, "--tokens", "5,9,13,2");
        Assert.True(r.ExitCode == 0, r.Stderr);
        return r.Stdout;
    }

    [Fact]
    public void SplitThenLoadAnyPart_ThenMerge_SameLogits()
    {
        string prefix = Path.Combine(_dir, "parts");
        var dry = CliRunner.Run("split", _model, prefix, "--split-max-tensors", "10", "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stderr);
        Assert.StartsWith("n_split: 3\nsplit 00001: n_tensors = 10, total_size = ", dry.Stdout.ReplaceLineEndings("\n"));
        Assert.Empty(Directory.GetFiles(_dir, "parts-*"));

        var split = CliRunner.Run("split", _model, prefix, "--split-max-tensors", "10");
        Assert.True(split.ExitCode == 0, split.Stderr);
        Assert.Equal(dry.Stdout, split.Stdout);
        string[] parts = [.. Enumerable.Range(1, 3).Select(i => $"{prefix}-0000{i}-of-00003.gguf")];
        Assert.All(parts, p => Assert.True(File.Exists(p), p));

        string expected = Logits(_model);
        Assert.Equal(expected, Logits(parts[0]));
        Assert.Equal(expected, Logits(parts[2]));

        string merged = Path.Combine(_dir, "merged.gguf");
        var merge = CliRunner.Run("merge", parts[0], merged);
        Assert.True(merge.ExitCode == 0, merge.Stderr);
        Assert.Equal(expected, Logits(merged));
        AssertCleanError(CliRunner.Run("merge", parts[0], merged), "exists");

        var info = CliRunner.Run("info", "--model", parts[1], "--json");
        Assert.True(info.ExitCode == 0, info.Stderr);
        Assert.Contains("\"files\":3", info.Stdout);

        File.Delete(parts[1]);
        AssertCleanError(CliRunner.Run("logits", "--model", parts[0], "--tokens", "1"), "part 2 of 3");
    }

    [Fact]
    public void SplitBySize()
    {
        string prefix = Path.Combine(_dir, "bysize");
        var r = CliRunner.Run("split", _model, prefix, "--split-max-size", "0.1M");
        Assert.True(r.ExitCode == 0, r.Stderr);
        int n = Directory.GetFiles(_dir, "bysize-*").Length;
        Assert.True(n > 1, $"{n} parts");
        Assert.Contains($"n_split: {n}", r.Stdout);
        Assert.Equal(Logits(_model), Logits($"{prefix}-00001-of-{n:D5}.gguf"));
    }

    [Fact]
    public void BadOptions_AreOneLineErrors()
    {
        string prefix = Path.Combine(_dir, "bad");
        AssertCleanError(CliRunner.Run("split", _model, prefix, "--split-max-size", "2X"), "--split-max-size");
        AssertCleanError(CliRunner.Run("split", _model, prefix, "--split-max-size", "0G"), "--split-max-size");
        AssertCleanError(CliRunner.Run("split", _model, prefix, "--split-max-tensors", "0"), "--split-max-tensors");
        AssertCleanError(CliRunner.Run("split", _model, prefix, "--split-max-tensors", "4", "--split-max-size", "1G"), "not both");
        AssertCleanError(CliRunner.Run("split", _model, prefix, "--split-max-size", "0.01M"), "no tensors");
        AssertCleanError(CliRunner.Run("split", Path.Combine(_dir, "missing.gguf"), prefix), "missing.gguf");
        AssertCleanError(CliRunner.Run("merge", _model, Path.Combine(_dir, "out.gguf")), "not a split model");
        Assert.Empty(Directory.GetFiles(_dir, "bad-*"));
    }
}
