// A model split into parts runs as the single file does: from the parts' mappings, then from their copy in memory,
// or from the mappings alone where all the parts together are too large to copy; the same logits, bit for bit.
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed class SplitModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-splitmodel-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static float[] Run(ICausalLM model)
    {
        using var session = new InferenceSession(model, 32);
        int[] prompt = [3, 17, 42, 5, 99, 7, 64, 11, 250];
        var logits = new List<float>(session.Evaluate(prompt, allLogits: true).ToArray());
        for (int i = 0; i < 4; i++) logits.AddRange(session.Evaluate([(i * 31 + 8) % 200 + 1]).ToArray());
        return logits.ToArray();
    }

    /// <summary>The preset written whole and as 3 parts; returns both the single file and the parts.</summary>
    private (string Single, IReadOnlyList<string> Parts) Write(string arch, string preset, GgmlType type)
    {
        string single = Path.Combine(_dir, $"{arch}-{preset}.gguf");
        Synthesizer.Write(Synthesizer.FindPreset(arch, preset), type, 9, single);
        using var f = GgufFile.Open(single);
        var parts = GgufSplit.Split(f, Path.Combine(_dir, $"{arch}-{preset}-split"), new GgufSplit.Options { MaxTensors = (f.Tensors.Count + 2) / 3 });
        Assert.Equal(3, parts.Count);
        return (single, parts);
    }

    [Theory]
    [InlineData("qwen2", "tiny", GgmlType.Q8_0)]
    [InlineData("deepseek2", "tiny", GgmlType.Q8_0)]
    public async Task ThreeParts_GiveTheSingleFilesLogits_OnTheMappingAndInMemory(string arch, string preset, GgmlType type)
    {
        var (single, parts) = Write(arch, preset, type);
        float[] expected;
        using (var lm = LoadedModel.Load(single, threads: 2))
        {
            await lm.InMemory;
            expected = Run(lm.Model);
        }
        foreach (string part in parts)
        {
            using var lm = LoadedModel.Load(part, threads: 2);
            Assert.Equal(3, lm.File.Paths.Count);
            await lm.InMemory;
            Assert.True(lm.File.InMemory);
            Assert.Equal(expected, Run(lm.Model));
        }
        using var mapped = LoadedModel.Load(parts[0], threads: 2, mmap: true);
        using var mappedSingle = LoadedModel.Load(single, threads: 2, mmap: true);
        Assert.Equal(Run(mappedSingle.Model), Run(mapped.Model));
    }

    [Fact]
    public void PartsTooLargeTogether_StayMapped()
    {
        var (_, parts) = Write("qwen2", "tiny", GgmlType.Q8_0);
        long total = parts.Sum(p => new FileInfo(p).Length);
        // each part alone would fit; all of them do not
        using var large = LoadedModel.Load(parts[1], 2, mmap: false, repack: true, memoryAvailable: (long)(total / LoadedModel.MaxCopyShare) - 1);
        Assert.NotNull(large.StaysMapped);
        Assert.False(large.File.InMemory);
        using var fits = LoadedModel.Load(parts[1], 2, mmap: false, repack: true, memoryAvailable: (long)(total / LoadedModel.MaxCopyShare) + 1);
        Assert.Null(fits.StaysMapped);
        Assert.Equal(Run(fits.Model), Run(large.Model));
    }
}
