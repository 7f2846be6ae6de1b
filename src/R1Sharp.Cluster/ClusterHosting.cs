// `serve --cluster`: the HTTP server of R1Sharp.Server with an Orleans silo in the same host. The silo joins the
// cluster (Redis membership, or localhost for development), hosts this node's engine as a GrainService, and the
// server's backend becomes the router; /v1/cluster lists the members.
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using R1Sharp.Engine;
using R1Sharp.Server;
using StackExchange.Redis;

namespace R1Sharp.Cluster;

public static class ClusterHosting
{
    /// <summary>
    /// Adds a node's parts to a silo: the engine grain's placement, the directory of members, the router. The host registers
    /// the node's <see cref="NodeEngine"/>.
    /// </summary>
    public static ISiloBuilder AddR1Node(this ISiloBuilder silo, RoutingOptions routing)
    {
        var s = silo.Services;
        s.AddPlacementDirector<NodePlacement, NodePlacementDirector>();
        s.AddSingleton(routing);
        s.AddSingleton<EngineNodes>();
        s.AddSingleton<NodeDirectory>();
        s.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<NodeDirectory>());
        s.AddSingleton(sp => new ClusterMetrics(sp.GetRequiredService<NodeEngine>().Registry, sp.GetRequiredService<NodeDirectory>));
        s.AddSingleton<ClusterRouter>();
        return silo;
    }

    /// <summary>Membership, endpoints and failure detection of a node started from the command line.</summary>
    public static ISiloBuilder UseR1Membership(this ISiloBuilder silo, ClusterNodeOptions o, IPAddress httpHost)
    {
        silo.Configure<ClusterOptions>(c => { c.ClusterId = o.ClusterId; c.ServiceId = "r1sharp"; });
        if (o.RedisEndpoint() is { } redis)
        {
            silo.UseRedisClustering(r => r.ConfigurationOptions = ConfigurationOptions.Parse(redis));
            bool any = ClusterNodeOptions.AdvertisedAddress(httpHost) is null;
            silo.Configure<EndpointOptions>(e =>
            {
                if (ClusterNodeOptions.AdvertisedAddress(httpHost) is { } ip) e.AdvertisedIPAddress = ip;
                e.SiloPort = o.SiloPort;
                e.GatewayPort = o.GatewayPort;
                if (any)
                {
                    e.SiloListeningEndpoint = new IPEndPoint(IPAddress.Any, o.SiloPort);
                    e.GatewayListeningEndpoint = new IPEndPoint(IPAddress.Any, o.GatewayPort);
                }
            });
        }
        else
        {
            silo.UseLocalhostClustering(o.SiloPort, o.GatewayPort, new IPEndPoint(IPAddress.Loopback, o.LocalhostPrimaryPort()!.Value),
                serviceId: "r1sharp", clusterId: o.ClusterId);
        }
        silo.Configure<ClusterMembershipOptions>(m =>
        {
            // seconds, not Orleans' tens: a probe every ProbeTimeout, suspected after MissedProbes misses, dead on two votes
            m.ProbeTimeout = o.ProbeTimeout;
            m.NumMissedProbesLimit = o.MissedProbes;
            m.NumVotesForDeathDeclaration = 2;
            m.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
            m.TableRefreshTimeout = TimeSpan.FromSeconds(5);
            m.DefunctSiloExpiration = TimeSpan.FromHours(1);
        });
        silo.Configure<SiloOptions>(s => s.SiloName = NodeName(o));
        return silo;
    }

    public static string NodeName(ClusterNodeOptions o) => o.NodeName ?? $"{Environment.MachineName}:{o.SiloPort}";

    /// <summary>Builds a cluster node: the server over <paramref name="model"/>, its silo, and the router as its backend.</summary>
    public static R1Server CreateServer(ServerOptions server, ClusterNodeOptions cluster, LoadedModel model, Action<ILoggingBuilder>? logging = null)
    {
        cluster.Check();
        var host = R1Server.CheckOptions(server);
        var hooks = new ServerHooks
        {
            ConfigureBuilder = (builder, context) =>
            {
                var scheduler = context.Scheduler;
                string http = server.Port == 0 ? "" : $"http://{server.Host}:{server.Port}/";
                var identity = NodeEngine.Identify(model, context.ModelId, scheduler.ContextSize, scheduler.Options.Slots, NodeName(cluster), http);
                builder.Services.AddSingleton(new NodeEngine(scheduler, identity, context.Metrics.Registry));
                builder.UseOrleans(silo => silo.UseR1Membership(cluster, host).AddR1Node(cluster.Routing));
                builder.Services.AddHostedService<JoinCheck>();
                // Orleans' own notes (ServerGC advice, watchdog) drown the node's: its errors stay, membership changes are logged by NodeDirectory
                builder.Logging.AddFilter("Orleans", LogLevel.Error).AddFilter("Polly", LogLevel.Error)
                    .AddFilter("Microsoft.Extensions.Hosting", LogLevel.None); // a refused join is the caller's one-line error, not a stack trace
            },
            Backend = (services, _) => services.GetRequiredService<ClusterRouter>(),
            Map = (app, _) => app.MapGet("/v1/cluster", ctx => ClusterEndpoint.WriteAsync(ctx, app.Services)),
        };
        return R1Server.Create(server, model, logging, hooks);
    }

    /// <summary>Starts a node built by CreateServer; a node whose model differs from the cluster's fails with a one-line reason.</summary>
    public static async Task StartAsync(R1Server server, ClusterNodeOptions cluster)
    {
        try
        {
            await server.StartAsync();
        }
        catch (Exception e) when (e is RedisConnectionException or RedisException || e.InnerException is RedisConnectionException)
        {
            throw new InvalidOperationException($"cannot reach the cluster membership at {cluster.Membership}: {FirstLine(e.Message)}", e);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException && e is not JoinRefusedException)
        {
            throw new InvalidOperationException($"could not join the cluster ({cluster.Membership}): {FirstLine(e.Message)}", e);
        }
        server.Services.GetRequiredService<NodeEngine>().SetHttpAddress(server.BaseAddress.ToString());
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>After the silo joined: compares this node's model with the cluster's, and refuses to serve a different one.</summary>
    private sealed class JoinCheck(NodeDirectory directory) : IHostedService
    {
        public async Task StartAsync(CancellationToken ct)
        {
            if (await directory.CheckJoinAsync(ct) is { } why) throw new JoinRefusedException(why);
        }

        public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
    }
}

/// <summary>This node serves another model than the cluster it tried to join.</summary>
public sealed class JoinRefusedException(string message) : InvalidOperationException(message);
