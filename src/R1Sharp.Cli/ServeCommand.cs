// serve: the OpenAI/DeepSeek-compatible HTTP server (R1Sharp.Server) on one model, until SIGTERM or Ctrl+C; with
// --cluster, one node of an Orleans cluster of such servers (R1Sharp.Cluster).
using System.CommandLine;
using Microsoft.Extensions.Logging;
using R1Sharp.Cluster;
using R1Sharp.Server;

namespace R1Sharp.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var host = new Option<string>("--host") { Description = "address to bind (an IP address or localhost)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "require 'Authorization: Bearer KEY' on /v1/*" };
        var parallel = new Option<int>("--parallel", "-np") { Description = "sequences decoded together (KV-cache slots)", DefaultValueFactory = _ => 4 };
        var ctx = new Option<int>("--ctx", "-c") { Description = "context per slot in tokens (default: min(model's, 4096))" };
        var maxQueue = new Option<int>("--max-queue") { Description = "requests waiting for a slot before 429", DefaultValueFactory = _ => 64 };
        var prefillChunk = new Option<int>("--prefill-chunk", "-ub")
        {
            Description = "prompt tokens prefilled per step, shared by all sequences (chunked prefill; as llama.cpp's --ubatch-size)",
            DefaultValueFactory = _ => ServerOptions.DefaultPrefillChunk,
        };
        var name = new Option<string?>("--model-name") { Description = "the model id clients send (default: the file name without .gguf)" };
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cacheType = CliCommon.CacheTypeOption();
        var cluster = new Option<bool>("--cluster") { Description = "run as one node of a cluster (an Orleans silo); any node takes any request" };
        var membership = new Option<string>("--cluster-membership")
        {
            Description = "where nodes find each other: redis://HOST:PORT, or localhost[:PORT] (one machine; the node on silo port PORT, default 11111, holds the membership)",
            DefaultValueFactory = _ => "localhost",
        };
        var siloPort = new Option<int>("--silo-port") { Description = "port of the traffic between nodes", DefaultValueFactory = _ => ClusterNodeOptions.DefaultSiloPort };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "port Orleans clients connect to", DefaultValueFactory = _ => 30000 };
        var nodeName = new Option<string?>("--node-name") { Description = "this node's name in /v1/cluster (default: HOST:SILO_PORT)" };
        var clusterId = new Option<string>("--cluster-id") { Description = "nodes with the same id and membership form one cluster", DefaultValueFactory = _ => "r1sharp" };
        var probe = new Option<double>("--cluster-probe-timeout")
        {
            Description = "seconds a liveness probe may take; a node missing 2 in a row is declared dead (detection in about 2-3 times this)",
            DefaultValueFactory = _ => 2,
        };
        var route = new Option<string>("--route") { Description = "affinity (the node caching the longest prefix of the prompt) or random", DefaultValueFactory = _ => "affinity" };
        var routeBlock = new Option<int>("--route-block") { Description = "tokens per block of the prefix index", DefaultValueFactory = _ => 64 };
        var routeCache = new Option<double>("--route-cache-threshold") { Description = "share of the prompt a cached prefix must cover to pull the request to its node", DefaultValueFactory = _ => 0.3 };
        var routeAbs = new Option<int>("--route-balance-abs") { Description = "a node is too busy for affinity past this many more requests than the least loaded...", DefaultValueFactory = _ => 8 };
        var routeRel = new Option<double>("--route-balance-rel") { Description = "...and this many times its load", DefaultValueFactory = _ => 1.5 };
        var speculation = new SpeculationFlags();
        var cmd = new Command("serve", "serve a model over an OpenAI/DeepSeek-compatible HTTP API")
        {
            model, host, port, apiKey, parallel, ctx, maxQueue, prefillChunk, name, threads, mmap,
            cluster, membership, siloPort, gatewayPort, nodeName, clusterId, probe, route, routeBlock, routeCache, routeAbs, routeRel,
        };
        speculation.AddTo(cmd);
        cacheType.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var spec = speculation.Read(r);
            var options = new ServerOptions
            {
                ModelPath = r.GetValue(model)!,
                Host = r.GetValue(host)!,
                Port = r.GetValue(port),
                ApiKey = r.GetValue(apiKey),
                Parallel = r.GetValue(parallel),
                ContextSize = r.GetValue(ctx),
                MaxQueue = r.GetValue(maxQueue),
                PrefillChunk = r.GetValue(prefillChunk),
                ModelName = r.GetValue(name),
                Threads = r.GetValue(threads),
                CacheType = cacheType.Parse(r).K,
                CacheTypeV = cacheType.Parse(r).V,
                DraftModelPath = spec.DraftModel,
                Speculation = spec.Kind,
                DraftMax = spec.DraftMax,
                DraftPMin = spec.PMin,
            };
            ClusterNodeOptions? node = null;
            if (r.GetValue(cluster))
            {
                node = new ClusterNodeOptions
                {
                    Membership = r.GetValue(membership)!,
                    SiloPort = r.GetValue(siloPort),
                    GatewayPort = r.GetValue(gatewayPort),
                    NodeName = r.GetValue(nodeName),
                    ClusterId = r.GetValue(clusterId)!,
                    ProbeTimeout = r.GetValue(probe) is var p && p > 0 && p < 3600 ? TimeSpan.FromSeconds(p)
                        : throw new ArgumentException($"--cluster-probe-timeout must be between 0 and 3600 seconds (got {p})"),
                    Routing = new RoutingOptions
                    {
                        Policy = r.GetValue(route) switch
                        {
                            "affinity" => RoutePolicy.Affinity,
                            "random" => RoutePolicy.Random,
                            var v => throw new ArgumentException($"--route must be affinity or random (got '{v}')"),
                        },
                        BlockTokens = r.GetValue(routeBlock),
                        CacheThreshold = r.GetValue(routeCache),
                        BalanceAbsolute = r.GetValue(routeAbs),
                        BalanceRelative = r.GetValue(routeRel),
                    },
                };
                node.Check();
            }
            else
            {
                Option[] clusterOnly = [membership, siloPort, gatewayPort, nodeName, clusterId, probe, route, routeBlock, routeCache, routeAbs, routeRel];
                if (clusterOnly.FirstOrDefault(o => r.GetResult(o) is { Implicit: false }) is { } given)
                    throw new ArgumentException($"{given.Name} needs --cluster");
            }
            if (!File.Exists(options.ModelPath)) throw new FileNotFoundException($"model file not found: {options.ModelPath}");
            R1Server.CheckOptions(options);
            // the KV cache (and the weights' copy) must fit before anything is loaded: refused now, not OOM-killed later
            using (var file = R1Sharp.Formats.GgufFile.Open(options.ModelPath))
                ServerMemory.Check(options, R1Sharp.Models.ModelInfo.From(file), file.FileSize,
                    file.GetStringArray("tokenizer.ggml.tokens")?.Length ?? 0, r.GetValue(mmap), R1Sharp.Engine.LoadedModel.MemoryAvailable());
            using var lm = CliProgress.LoadModel(options.ModelPath, options.Threads, r.GetValue(mmap), reportPlain: true);
            Action<ILoggingBuilder> logging = l => l.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
            var server = node is null ? R1Server.Create(options, lm, logging) : ClusterHosting.CreateServer(options, node, lm, logging);
            try
            {
                if (node is null) server.StartAsync().GetAwaiter().GetResult();
                else ClusterHosting.StartAsync(server, node).GetAwaiter().GetResult();
                string drafts = server.Scheduler.Options.Speculation is { } sp ? $"; speculative decoding ({sp.Source.Name}, up to {sp.DraftMax} draft tokens)" : "";
                Console.Error.WriteLine($"r1sharp: serving '{server.ModelId}' at {server.BaseAddress} " +
                                        $"({options.Parallel} slots x {server.Scheduler.ContextSize} tokens){drafts}; chat page at {server.BaseAddress}; " +
                                        (node is null ? "" : $"cluster node '{ClusterHosting.NodeName(node)}' ({node.Membership}, silo port {node.SiloPort}); ") +
                                        "Ctrl+C to stop");
                server.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            return 0;
        }));
        return cmd;
    }
}
