// A mixture of experts reads the experts its router picks and no others: an expert whose weights are all NaN changes
// the logits only when a token chose it (a read of an unchosen expert, even one weighted 0, would carry the NaN), so
// over one token exactly ExpertsUsed experts per MoE layer matter, and over a few tokens at most that many per token.
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Models;

public sealed class ExpertReadTests
{
    private static readonly SynthSpec s_spec = Synthesizer.FindPreset("deepseek2", "tiny") with
    {
        Moe = Synthesizer.FindPreset("deepseek2", "tiny").Moe! with { Experts = 16, ExpertsUsed = 3, Groups = 4, GroupsUsed = 2 },
    };

    private static readonly Lazy<byte[]> s_file = new(() =>
    {
        string path = Path.Combine(Path.GetTempPath(), $"r1sharp-experts-{Environment.ProcessId}-{Guid.NewGuid():N}.gguf");
        try
        {
            Synthesizer.Write(s_spec, GgmlType.F32, 5, path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    });

    private static float[] Logits(byte[] bytes, int[] tokens)
    {
        using var file = GgufFile.OpenMemory(bytes);
        using var pool = new ComputePool(2);
        using var model = ModelRegistry.Load(file, pool);
        using var session = new InferenceSession(model, 16, GgmlType.F32);
        return session.Evaluate(tokens, allLogits: true).ToArray();
    }

    /// <summary>The file's bytes with expert <paramref name="expert"/> of layer <paramref name="layer"/> all NaN (gate, up and down).</summary>
    private static byte[] Poisoned(int layer, int expert)
    {
        var bytes = (byte[])s_file.Value.Clone();
        using var file = GgufFile.OpenMemory(bytes);
        foreach (string name in new[] { "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps" })
        {
            var t = file.GetTensor($"blk.{layer}.{name}.weight");
            long per = t.ByteSize / s_spec.Moe!.Experts;
            var nan = BitConverter.GetBytes(float.NaN);
            long from = file.FileOffsetOf(t) + expert * per;
            for (long i = 0; i < per; i += 4) nan.CopyTo(bytes, from + i);
        }
        return bytes;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void PoisonedExperts_MatterOnlyWhenChosen(int tokens)
    {
        int[] ids = [.. Enumerable.Range(0, tokens).Select(i => 11 + 37 * i)];
        var clean = Logits(s_file.Value, ids);
        Assert.All(clean, x => Assert.True(float.IsFinite(x)));
        var moe = s_spec.Moe!;
        for (int layer = moe.LeadingDenseLayers; layer < s_spec.Layers; layer++)
        {
            int mattered = 0;
            for (int e = 0; e < moe.Experts; e++)
            {
                var logits = Logits(Poisoned(layer, e), ids);
                if (!logits.AsSpan().SequenceEqual(clean)) mattered++;
            }
            if (tokens == 1) Assert.Equal(moe.ExpertsUsed, mattered);
            else Assert.InRange(mattered, moe.ExpertsUsed, tokens * moe.ExpertsUsed);
        }
    }
}
