// Several cluster nodes in one process: an Orleans InProcessTestCluster whose every silo hosts its own engine
// (its own scheduler over a tiny synthesized model) and the node's router, as `serve --cluster` would.
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.TestingHost;
using Prometheus;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Server;
using R1Sharp.Tensors;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace R1Sharp.Cluster.Tests;

public sealed class InProcessNodes : IAsyncDisposable
{
    private static readonly Lazy<string> s_modelPath = new(() =>
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("r1sharp-cluster-").FullName;
        string path = Path.Combine(dir, "tiny.gguf");
        Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 7, path);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { System.IO.Directory.Delete(dir, true); } catch (IOException) { } };
        return path;
    });

    public static string ModelPath => s_modelPath.Value;

    private InProcessNodes(InProcessTestCluster cluster) => Cluster = cluster;

    public InProcessTestCluster Cluster { get; }

    /// <param name="contextOf">The context size of each silo's engine, by silo name (default 2048 for all).</param>
    public static async Task<InProcessNodes> StartAsync(int nodes, RoutingOptions routing, int slots = 4, Func<string, int>? contextOf = null)
    {
        var builder = new InProcessTestClusterBuilder((short)nodes);
        builder.Options.InitializeClientOnDeploy = false;
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSiloHost((silo, host) => host.Services.AddSingleton(_ => NewEngine(silo.SiloName, slots, contextOf?.Invoke(silo.SiloName) ?? 2048)));
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddR1Node(routing);
            silo.Configure<ClusterMembershipOptions>(m =>
            {
                m.ProbeTimeout = TimeSpan.FromSeconds(1);
                m.NumMissedProbesLimit = 2;
                m.NumVotesForDeathDeclaration = 1;
            });
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        var n = new InProcessNodes(cluster);
        if (contextOf is null)
            await WaitUntil(() => Enumerable.Range(0, nodes).All(i => n.Directory(i).Candidates().Count == nodes && n.Directory(i).Candidates().All(m => m.Load is not null)),
                "every node routes to every other", 30_000);
        return n;
    }

    private static NodeEngine NewEngine(string name, int slots, int context)
    {
        var model = LoadedModel.Load(ModelPath, threads: 1);
        var scheduler = new Scheduler(model.Model, model.Tokenizer, model.IsEndOfGeneration,
            new SchedulerOptions { Slots = slots, ContextSize = context });
        var identity = NodeEngine.Identify(model, "tiny", context, slots, name, "");
        return new NodeEngine(scheduler, identity, Metrics.NewCustomRegistry(), new Owned(scheduler, model));
    }

    private sealed class Owned(Scheduler scheduler, LoadedModel model) : IDisposable
    {
        public void Dispose()
        {
            scheduler.Resume();
            scheduler.Dispose();
            model.Dispose();
        }
    }

    public IServiceProvider Services(int i) => Cluster.Silos[i].ServiceProvider;
    public ClusterRouter Router(int i) => Services(i).GetRequiredService<ClusterRouter>();
    public NodeEngine Engine(int i) => Services(i).GetRequiredService<NodeEngine>();
    public NodeDirectory Directory(int i) => Services(i).GetRequiredService<NodeDirectory>();
    public SiloAddress Address(int i) => Cluster.Silos[i].SiloAddress;
    public int IndexOf(SiloAddress a) => Cluster.Silos.ToList().FindIndex(s => s.SiloAddress.Equals(a));

    /// <summary>Renders a conversation as the server does (the model's chat template, then the tokenizer).</summary>
    public int[] Prompt(IReadOnlyList<ChatMessage> messages)
    {
        var tok = LoadedModelTokenizer.Value;
        return tok.Encode(ChatTemplates.Render(ChatTemplateKind.R1, messages, tok.BosText, addGenerationPrompt: true));
    }

    private static readonly Lazy<R1Sharp.Tokenization.BpeTokenizer> LoadedModelTokenizer = new(() => LoadedModel.Load(ModelPath, threads: 1).Tokenizer);

    /// <summary>Runs a job through node <paramref name="i"/>'s router; returns the text and the final usage.</summary>
    public async Task<(string Text, GenerationUsage Usage)> RunAsync(int i, int[] prompt, int maxTokens = 8, CancellationToken ct = default)
    {
        var job = new GenerationJob(new EngineRequest { Prompt = prompt, MaxTokens = maxTokens, IgnoreEos = true });
        var text = new System.Text.StringBuilder();
        GenerationUsage? usage = null;
        await foreach (var c in (await Router(i).SubmitAsync(job, ct)).WithCancellation(ct))
        {
            text.Append(c.Chunk.Text);
            usage = c.Chunk.Usage ?? usage;
        }
        return (text.ToString(), usage!);
    }

    public static async Task WaitUntil(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}
