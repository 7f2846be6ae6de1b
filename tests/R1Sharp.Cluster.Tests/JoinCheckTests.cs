// Nodes of one cluster must serve the same model at the same context: a member that differs is never routed to,
// and the node that finds the difference at join is refused with a one-line reason.
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Cluster.Tests;

public sealed class JoinCheckTests
{
    [Fact]
    public async Task ANodeServingAnotherContextIsNeverRoutedToAndRefusedAtJoin()
    {
        await using var nodes = await InProcessNodes.StartAsync(2, new RoutingOptions(), contextOf: name => name == "Silo_0" ? 2048 : 1024);
        var other = nodes.Address(1);
        await InProcessNodes.WaitUntil(() => nodes.Directory(0).Members.Any(m => m.Silo.Equals(other) && m.Identity is not null), "node 0 has asked node 1 what it serves", 30_000);
        var seen = nodes.Directory(0).Members.Single(m => m.Silo.Equals(other));
        Assert.Contains("--ctx", seen.Mismatch);
        Assert.DoesNotContain(nodes.Directory(0).Candidates(), m => m.Silo.Equals(other));
        string? refusal = await nodes.Directory(1).CheckJoinAsync(default);
        Assert.NotNull(refusal);
        Assert.StartsWith("refusing to join the cluster: ", refusal);
        Assert.DoesNotContain('\n', refusal);
        // requests through node 0 stay on node 0
        for (int k = 0; k < 4; k++) await nodes.RunAsync(0, Enumerable.Range(1, 40 + k).ToArray(), maxTokens: 2);
        Assert.Equal(0, nodes.Engine(1).Status().Jobs);
    }

    [Fact]
    public void ASplitModelHasAnIdentityOfAllItsPartsAndAnotherRunsWeightsDiffer()
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("r1sharp-cluster-split-").FullName;
        try
        {
            NodeIdentity Split(ulong seed)
            {
                string single = Path.Combine(dir, $"m{seed}.gguf");
                Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, seed, single);
                IReadOnlyList<string> parts;
                using (var f = GgufFile.Open(single))
                    parts = GgufSplit.Split(f, Path.Combine(dir, $"m{seed}-split"), new GgufSplit.Options { MaxTensors = (f.Tensors.Count + 2) / 3 });
                Assert.Equal(3, parts.Count);
                using var model = LoadedModel.Load(parts[1], threads: 1);
                Assert.Equal(parts.Sum(p => new FileInfo(p).Length), model.File.FileSize);
                return NodeEngine.Identify(model, "m", 512, 1, "a", "");
            }
            var a = Split(7);
            Assert.Null(a.Mismatch(Split(7) with { Name = "b" }));
            Assert.Contains("different model file", a.Mismatch(Split(8) with { Name = "b" }));
        }
        finally { System.IO.Directory.Delete(dir, true); }
    }
}
