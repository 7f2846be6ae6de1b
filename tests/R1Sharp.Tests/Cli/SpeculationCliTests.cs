// generate, bench and serve with speculative decoding: greedy text the same with and without each proposer (qwen2,
// llama, deepseek2 with its MTP layer; also when the context fills up), bench's speculation figures, and one-line
// errors for what cannot work.
using System.Text.Json;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Cli;

public sealed class SpeculationCliTests : IClassFixture<SpeculationCliTests.Files>
{
    public sealed class Files : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("r1sharp-spec-cli-").FullName;
        public Dictionary<string, string> Targets { get; } = new();
        /// <summary>Per architecture a file of another seed: the target's vocabulary, other weights.</summary>
        public Dictionary<string, string> OtherDrafts { get; } = new();

        public Files()
        {
            foreach (var (arch, preset) in new[] { ("qwen2", "tiny"), ("llama", "tiny"), ("deepseek2", "tiny-mtp") })
            {
                string path = Path.Combine(Dir, $"{arch}.gguf");
                Synthesizer.Write(Synthesizer.FindPreset(arch, preset), GgmlType.F32, 21, path);
                Targets[arch] = path;
                string other = Path.Combine(Dir, $"{arch}-other.gguf");
                Synthesizer.Write(Synthesizer.FindPreset(arch, preset), GgmlType.F32, 22, other);
                OtherDrafts[arch] = other;
            }
        }

        public void Dispose() => Directory.Delete(Dir, true);
    }

    private readonly Files _f;

    public SpeculationCliTests(Files f) => _f = f;

    /// <summary>One error line naming the cause (serve may say first which model it loaded), no stack trace.</summary>
    private static void AssertCleanError(CliRunner.Result r, string contains)
    {
        Assert.NotEqual(0, r.ExitCode);
        var errors = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("loaded ", StringComparison.Ordinal)).ToList();
        Assert.Single(errors);
        Assert.StartsWith("error: ", errors[0]);
        Assert.Contains(contains, errors[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    public static TheoryData<string> Archs => new() { "qwen2", "llama", "deepseek2" };

    [Theory]
    [MemberData(nameof(Archs))]
    public void GreedyGenerateIsTheSameWithEveryProposer(string arch)
    {
        string model = _f.Targets[arch];
        // a prompt that repeats itself, so that n-gram lookup has something to copy
        string prompt = "one two three four, one two three four, one two";
        string[] Args(params string[] extra) =>
            ["generate", "--model", model, "--prompt", prompt, "--raw", "--temperature", "0", "-n", "48", "-t", "1", .. extra];
        var plain = CliRunner.Run(Args());
        Assert.Equal(0, plain.ExitCode);
        Assert.True(plain.Stdout.Trim().Length > 0);
        List<string[]> variants =
        [
            ["--spec", "ngram"],
            ["--draft-model", model, "--draft-p-min", "0"],
            ["--draft-model", _f.OtherDrafts[arch], "--draft-max", "3", "--draft-p-min", "0"],
        ];
        if (arch == "deepseek2") variants.Add(["--spec", "mtp", "--draft-p-min", "0"]);
        foreach (var v in variants)
        {
            var r = CliRunner.Run(Args(v));
            Assert.True(r.ExitCode == 0, $"{string.Join(' ', v)}: {r.Stderr}");
            Assert.Equal(plain.Stdout, r.Stdout);
        }

        // the context (40 tokens, the prompt about 26) fills up first: the same text stops at the same place
        string[] Full(params string[] extra) =>
            ["generate", "--model", model, "--prompt", prompt, "--raw", "--temperature", "0", "-n", "100", "--ctx", "40", "-t", "1", .. extra];
        var full = CliRunner.Run(Full());
        Assert.True(full.ExitCode == 0, full.Stderr);
        var fullSpec = CliRunner.Run(Full("--draft-model", model, "--draft-p-min", "0"));
        Assert.True(fullSpec.ExitCode == 0, fullSpec.Stderr);
        Assert.Equal(full.Stdout, fullSpec.Stdout);
    }

    [Fact]
    public void BenchReportsAcceptanceAndTokensPerPass()
    {
        string model = _f.Targets["qwen2"];
        var r = CliRunner.Run("bench", "--model", model, "-p", "8", "-n", "24", "-t", "1", "--json", "--draft-model", model, "--draft-p-min", "0");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal("draft-model", root.GetProperty("spec").GetString());
        // the model drafting for itself: (nearly) every draft accepted, several tokens per pass
        Assert.InRange(root.GetProperty("accept_rate").GetDouble(), 0.9, 1.0);
        Assert.True(root.GetProperty("tokens_per_pass").GetDouble() > 2);
        Assert.True(root.GetProperty("spec_decode_tok_s").GetDouble() > 0);
        Assert.True(root.GetProperty("plain_decode_tok_s").GetDouble() > 0);
    }

    [Fact]
    public void WhatCannotWorkIsAOneLineError()
    {
        string qwen = _f.Targets["qwen2"];
        string defaultModel = Path.Combine(AppContext.BaseDirectory, "models", "r1sharp-arith.gguf");
        AssertCleanError(CliRunner.Run("generate", "--model", qwen, "--prompt", "hi", "--draft-model", defaultModel), "vocabulary differs from the target's: token ");
        AssertCleanError(CliRunner.Run("generate", "--model", qwen, "--prompt", "hi", "--spec", "mtp"), "multi-token-prediction");
        AssertCleanError(CliRunner.Run("generate", "--model", qwen, "--prompt", "hi", "--spec", "lookahead"), "--spec: 'lookahead'");
        AssertCleanError(CliRunner.Run("generate", "--model", qwen, "--prompt", "hi", "--spec", "ngram", "--draft-model", qwen), "give one");
        AssertCleanError(CliRunner.Run("generate", "--model", qwen, "--prompt", "hi", "--spec", "ngram", "--draft-max", "0"), "--draft-max");
        AssertCleanError(CliRunner.Run("generate", "--model", qwen, "--prompt", "hi", "--draft-model", Path.Combine(_f.Dir, "none.gguf")), "draft model file not found");
        AssertCleanError(CliRunner.Run("serve", "--model", qwen, "--spec", "mtp", "--port", "0"), "multi-token-prediction");
    }

    [Fact]
    public void HelpListsTheSpeculationFlags()
    {
        foreach (string verb in new[] { "generate", "chat", "bench", "serve" })
        {
            var r = CliRunner.Run(verb, "--help");
            foreach (string flag in new[] { "--draft-model", "--spec", "--draft-max", "--draft-p-min" })
                Assert.Contains(flag, r.Stdout);
        }
    }
}
