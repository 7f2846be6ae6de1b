// A model answers from its file's mapping while the file is copied into memory, then moves to the copy between two
// passes: the mapping's matrices are read with the interleaved layout's arithmetic, so the logits before and after
// the move are the bits of a model loaded in memory from the start.
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed class WeightMoveTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-move-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A dense shape whose matrices take Q4_K and Q6_K blocks (256 columns) and whole interleaved groups.</summary>
    private static readonly SynthSpec s_kQuantShape = new()
    {
        Architecture = "qwen2", Name = "k-quant", Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, FfnDim = 512, ContextLength = 2048,
    };

    private static SynthSpec Spec(string arch, string preset) => preset == "k-quant" ? s_kQuantShape : Synthesizer.FindPreset(arch, preset);

    private string Write(string arch, string preset, GgmlType type)
    {
        string path = Path.Combine(_dir, $"{arch}-{preset}-{type}.gguf");
        Synthesizer.Write(Spec(arch, preset), type, 21, path);
        return path;
    }

    /// <summary>Matrices of the file that have an interleaved layout here (so that the comparison is not of native reads alone).</summary>
    private static unsafe int InterleavableMatrices(GgufFile file) => file.Tensors.Count(t =>
        t.Shape.Length == 2 && new WeightMatrix(t.Type, null, (int)t.Shape[1], (int)t.Shape[0]).CanInterleave);

    private static unsafe bool HasInterleavedLayout(GgmlType type) => KernelTable.Default[type].DotInterleaved != null;

    /// <summary>Logits of a 9-token prompt pass and then 5 decode steps, all positions.</summary>
    private static float[] Run(ICausalLM model)
    {
        using var session = new InferenceSession(model, 32);
        int[] prompt = [3, 17, 42, 5, 99, 7, 64, 11, 250];
        var logits = new List<float>(session.Evaluate(prompt, allLogits: true).ToArray());
        for (int i = 0; i < 5; i++) logits.AddRange(session.Evaluate([(i * 31 + 8) % 200 + 1]).ToArray());
        return logits.ToArray();
    }

    public static TheoryData<string, string, GgmlType> Files() => new()
    {
        { "qwen2", "tiny", GgmlType.Q8_0 },
        { "qwen2", "k-quant", GgmlType.Q8_0 },
        { "qwen2", "k-quant", GgmlType.Q4_K },
        { "qwen2", "k-quant", GgmlType.Q6_K },
        { "llama", "tiny", GgmlType.Q8_0 },
        { "deepseek2", "tiny", GgmlType.Q8_0 },
        { "deepseek2", "tiny-lite", GgmlType.Q8_0 },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void MappedModelReadingInterleaved_EqualsInMemoryModel_BitForBit(string arch, string preset, GgmlType type)
    {
        string path = Write(arch, preset, type);
        using var pool = new ComputePool(2);
        using var mapped = GgufFile.Open(path);
        using var copy = mapped.CopyToMemory(threads: 2);
        Assert.False(mapped.InMemory);
        Assert.True(mapped.RepackWeights && copy.RepackWeights);
        int interleavable = InterleavableMatrices(mapped);
        if (!HasInterleavedLayout(type))
        {
            Console.WriteLine($"{nameof(MappedModelReadingInterleaved_EqualsInMemoryModel_BitForBit)}({arch} {preset} {type}): no interleaved {type} layout at {KernelTable.Default.Level}; only native reads compared");
        }
        else
        {
            Assert.True(interleavable > 0, $"no matrix of {type} takes the interleaved layout");
        }
        using var onRead = ModelRegistry.Load(mapped, pool);
        using var inMemory = ModelRegistry.Load(copy, pool);
        Assert.Equal(Run(inMemory), Run(onRead));
    }

    [Theory]
    [InlineData("qwen2", "k-quant", GgmlType.Q4_K)]
    [InlineData("deepseek2", "tiny", GgmlType.Q8_0)]
    public async Task LoadedModel_MovesToMemoryBetweenPasses_WithTheSameLogits(string arch, string preset, GgmlType type)
    {
        string path = Write(arch, preset, type);
        float[] expected;
        using (var pool = new ComputePool(2))
        using (var mapped = GgufFile.Open(path))
        using (var file = mapped.CopyToMemory(threads: 2))
        {
            using var model = ModelRegistry.Load(file, pool);
            expected = Run(model);
        }

        using var lm = LoadedModel.Load(path, threads: 2);
        Assert.True(lm.File.RepackWeights);
        // passes run while the weights move (on the mapping or on the copy, whichever the timing gives) and after
        using var session = new InferenceSession(lm.Model, 32);
        int[] prompt = [3, 17, 42, 5, 99, 7, 64, 11, 250];
        var logits = new List<float>(session.Evaluate(prompt, allLogits: true).ToArray());
        for (int i = 0; i < 5; i++)
        {
            if (i == 2) await lm.InMemory;
            logits.AddRange(session.Evaluate([(i * 31 + 8) % 200 + 1]).ToArray());
        }
        Assert.True(lm.InMemory.IsCompletedSuccessfully);
        Assert.True(lm.File.InMemory);
        Assert.Equal(expected, logits.ToArray());
    }

    [Fact]
    public void LoadedModel_FileLargerThanTheMemoryAvailable_StaysMappedInItsOwnLayout()
    {
        string path = Write("qwen2", "tiny", GgmlType.Q8_0);
        long size = new FileInfo(path).Length;
        using var mapped = LoadedModel.Load(path, threads: 2, mmap: true);
        using var large = LoadedModel.Load(path, 2, mmap: false, repack: true, memoryAvailable: (long)(size / LoadedModel.MaxCopyShare) - 1);
        Assert.NotNull(large.StaysMapped);
        Assert.Contains("memory available", large.StaysMapped);
        Assert.True(large.InMemory.IsCompletedSuccessfully);
        Assert.False(large.File.InMemory);
        Assert.False(large.File.RepackWeights);
        Assert.Equal(Run(mapped.Model), Run(large.Model));
        using var fits = LoadedModel.Load(path, 2, mmap: false, repack: true, memoryAvailable: (long)(size / LoadedModel.MaxCopyShare) + 1);
        Assert.Null(fits.StaysMapped);
        Assert.True(fits.File.RepackWeights);
        Assert.Null(mapped.StaysMapped); // --mmap asked for the mapping
    }

    [Fact]
    public void LoadedModel_MappedOrDisposedWhileMoving_StaysConsistent()
    {
        string path = Write("qwen2", "tiny", GgmlType.Q8_0);
        using (var mapped = LoadedModel.Load(path, threads: 2, mmap: true))
        {
            // --mmap: no move, the mapping read in the file's own layout
            Assert.True(mapped.InMemory.IsCompletedSuccessfully);
            Assert.False(mapped.File.InMemory);
            Assert.False(mapped.File.RepackWeights);
        }
        for (int i = 0; i < 3; i++)
        {
            // disposed at once: the move stops, or finishes building and releases what it built, or is done
            var lm = LoadedModel.Load(path, threads: 2);
            lm.Dispose();
            lm.Dispose();
            Assert.True(((IAsyncResult)lm.InMemory).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(30)), "the move did not end after Dispose");
            Assert.True(lm.InMemory.IsCompletedSuccessfully || lm.InMemory.Exception?.InnerException is OperationCanceledException or ObjectDisposedException,
                $"the move ended with {lm.InMemory.Exception?.InnerException}");
        }
    }
}
