// The fuzz targets (fuzz/R1Sharp.Fuzz) over their committed inputs, without AFL: the seed corpora
// (fuzz/corpus/TARGET) must pass, and every input a fuzzer once crashed on (fuzz/crashes/TARGET, named for the
// defect) is a regression test: it must now be refused with the surface's own error or accepted, never crash or hang.
using R1Sharp.Formats;
using R1Sharp.Fuzz;
using R1Sharp.Kernels;
using R1Sharp.Models;
using Xunit.Abstractions;

namespace R1Sharp.Server.Tests;

public sealed class FuzzCorpusTests(ITestOutputHelper output)
{
    public static TheoryData<string> Targets() => new(FuzzTargets.All.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(Targets))]
    public void SeedsAndPastCrashesPass(string name)
    {
        var target = FuzzTargets.Find(name);
        var dirs = new[] { RepoPaths.Get($"fuzz/corpus/{name}"), RepoPaths.Get($"fuzz/crashes/{name}") }.Where(Directory.Exists).ToList();
        var files = Replay.Files(dirs).ToList();
        Assert.NotEmpty(files);
        var failures = files.Select(f => Replay.RunOne(target, f, TimeSpan.FromSeconds(30))).Where(o => o.Failure is not null).ToList();
        output.WriteLine($"{name}: {files.Count} inputs, {failures.Count} failed");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Select(o => $"{Path.GetFileName(o.File)}: {o.Failure}")));
    }

    [Theory]
    [InlineData("config-int-overflow-1.gguf")]
    [InlineData("config-int-overflow-2.gguf")]
    public void AModelSizePastIntIsAOneLineError(string file)
    {
        // found by the gguf fuzzer: a metadata integer past int.MaxValue overflowed in the loader's checked casts
        using var f = GgufFile.Open(RepoPaths.Get($"fuzz/crashes/gguf/{file}"));
        using var pool = new ComputePool(1);
        var e = Assert.Throws<InvalidDataException>(() => { using var model = ModelRegistry.Load(f, pool); });
        output.WriteLine(e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
