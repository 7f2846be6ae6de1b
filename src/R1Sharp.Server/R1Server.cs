// The OpenAI/DeepSeek-compatible HTTP server: loads the model, starts the scheduler, maps the endpoints on
// Kestrel, and on shutdown lets running requests finish (up to the grace period) before cancelling them.
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using R1Sharp.Chat;
using R1Sharp.Engine;

namespace R1Sharp.Server;

public sealed class R1Server : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly LoadedModel _model;
    private readonly bool _ownsModel;
    private bool _disposed;

    private R1Server(WebApplication app, ServingContext context, LoadedModel model, bool ownsModel)
    {
        _app = app;
        Context = context;
        _model = model;
        _ownsModel = ownsModel;
    }

    public ServingContext Context { get; }
    public Scheduler Scheduler => Context.Scheduler;
    public string ModelId => Context.ModelId;

    /// <summary>The address Kestrel bound (with the real port when 0 was asked for); valid after StartAsync.</summary>
    public Uri BaseAddress => new(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>
    /// Builds the server; loads the model unless one is given (then the caller keeps owning it). <paramref name="hooks"/>
    /// let a host around it (a cluster node) add services, route jobs elsewhere and map more endpoints.
    /// </summary>
    public static R1Server Create(ServerOptions o, LoadedModel? model = null, Action<ILoggingBuilder>? logging = null, ServerHooks? hooks = null)
    {
        var address = CheckOptions(o);
        bool owns = model is null;
        model ??= LoadedModel.Load(o.ModelPath, o.Threads);
        Scheduler? scheduler = null;
        IDraftSource? drafts = null;
        try
        {
            drafts = CreateDraftSource(o, model);
            int ctx = o.ContextSize > 0 ? o.ContextSize : Math.Min(model.Config.ContextLength, 4096);
            if (ctx > model.Config.ContextLength)
                throw new ArgumentException($"--ctx {ctx} is past the model's context length {model.Config.ContextLength}");
            ServerMetrics? metrics = null;
            metrics = new ServerMetrics(() => scheduler!, () => model.File.InMemory);
            scheduler = new Scheduler(model.Model, model.Tokenizer, model.IsEndOfGeneration, new SchedulerOptions
            {
                Slots = o.Parallel,
                ContextSize = ctx,
                CacheType = o.CacheType,
                CacheTypeV = o.CacheTypeV,
                MaxQueue = o.MaxQueue,
                PrefillChunk = o.PrefillChunk,
                OnStep = metrics.OnStep,
                OnFinish = metrics.Finished,
                Speculation = drafts is null ? null : new SpeculationOptions { Source = drafts, DraftMax = o.DraftMax },
            });
            var tok = model.Tokenizer;
            var trimmer = o.IdleTrimAfter > TimeSpan.Zero ? new IdleTrimmer(o.IdleTrimAfter) : null;
            var context = new ServingContext
            {
                Trimmer = trimmer,
                Model = model,
                Scheduler = scheduler,
                Backend = new LocalBackend(scheduler),
                Metrics = metrics,
                Options = o,
                ModelId = o.ModelName ?? model.File.Name,
                Template = ChatTemplates.Detect(tok.Data.ChatTemplate, t => tok.TokenToId(t) is not null),
            };

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            if (logging != null) logging(builder.Logging);
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.Limits.MaxRequestBodySize = o.MaxBodyBytes;
                k.AddServerHeader = false;
                k.Listen(address, o.Port);
            });
            builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = o.ShutdownGrace + TimeSpan.FromSeconds(5));
            hooks?.ConfigureBuilder?.Invoke(builder, context);
            // registered after the hooks' services: stopped before them, so running jobs drain while a cluster still serves them
            builder.Services.AddSingleton<IHostedService>(new SchedulerLifetime(scheduler, o.ShutdownGrace));
            if (trimmer != null) builder.Services.AddSingleton<IHostedService>(trimmer);
            var app = builder.Build();
            if (hooks?.Backend is { } backend) context.Backend = backend(app.Services, context);
            Endpoints.Map(app, context);
            hooks?.Map?.Invoke(app, context);
            return new R1Server(app, context, model, owns) { _drafts = drafts };
        }
        catch
        {
            scheduler?.Dispose();
            drafts?.Dispose();
            if (owns) model.Dispose();
            throw;
        }
    }

    private IDraftSource? _drafts;

    /// <summary>The proposer source the options name (a draft model it loads and owns, n-gram lookup, the MTP head), or null.</summary>
    private static IDraftSource? CreateDraftSource(ServerOptions o, LoadedModel model) => o.Speculation switch
    {
        "ngram" => new NgramSource(),
        "mtp" => new MtpSource(model.Model, model.Tokenizer.EndOfGeneration, o.DraftPMin),
        null when o.DraftModelPath is { } path => DraftModelSource.Load(path, model, o.DraftPMin),
        null => null,
        var other => throw new ArgumentException($"--spec: '{other}' is not a kind of speculation; use ngram or mtp (or --draft-model PATH)"),
    };

    /// <summary>Checks the options that need no model (call it before loading a large one); returns the address to bind.</summary>
    public static IPAddress CheckOptions(ServerOptions o)
    {
        if (o.Parallel < 1) throw new ArgumentException($"--parallel must be at least 1 (got {o.Parallel})");
        if (o.PrefillChunk < 1) throw new ArgumentException($"--prefill-chunk must be at least 1 (got {o.PrefillChunk})");
        if (o.ContextSize < 0) throw new ArgumentException($"--ctx must be positive (got {o.ContextSize})");
        if (o.Port is < 0 or > 65535) throw new ArgumentException($"--port must be between 0 and 65535 (got {o.Port})");
        if (o.ApiKey is "") throw new ArgumentException("--api-key must not be empty");
        if (o.Speculation is not (null or "ngram" or "mtp")) throw new ArgumentException($"--spec: '{o.Speculation}' is not a kind of speculation; use ngram or mtp (or --draft-model PATH)");
        if (o.Speculation != null && o.DraftModelPath != null) throw new ArgumentException("--spec and --draft-model are two ways to draft: give one");
        if (o.DraftMax < 1) throw new ArgumentException($"--draft-max must be at least 1 (got {o.DraftMax})");
        if (!(o.DraftPMin >= 0 && o.DraftPMin <= 1)) throw new ArgumentException($"--draft-p-min must be in [0, 1] (got {o.DraftPMin})");
        if (o.DraftModelPath != null && !File.Exists(o.DraftModelPath)) throw new FileNotFoundException($"draft model file not found: {o.DraftModelPath}");
        return o.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(o.Host, out var ip) ? ip
            : throw new ArgumentException($"--host must be an IP address or localhost (got '{o.Host}')");
    }

    public Task StartAsync(CancellationToken ct = default) => _app.StartAsync(ct);

    /// <summary>The host's services (a cluster node finds its Orleans services here).</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>After StartAsync: waits for SIGTERM/Ctrl+C (or <paramref name="ct"/>), then shuts down gracefully.</summary>
    public Task WaitForShutdownAsync(CancellationToken ct = default) => _app.WaitForShutdownAsync(ct);

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await _app.StopAsync();
        await _app.DisposeAsync();
        Context.Scheduler.Dispose();
        _drafts?.Dispose();
        if (_ownsModel) _model.Dispose();
    }

    /// <summary>On shutdown: refuse new requests at once, let running ones finish for the grace period, cancel the rest.</summary>
    private sealed class SchedulerLifetime(Scheduler scheduler, TimeSpan grace) : IHostedService
    {
        public Task StartAsync(CancellationToken ct) => Task.CompletedTask;

        public async Task StopAsync(CancellationToken ct)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(grace);
            await scheduler.DrainAsync(cts.Token);
        }
    }
}

/// <summary>What a host around the server adds (R1Sharp.Cluster): services, a backend other than the local scheduler, endpoints.</summary>
public sealed class ServerHooks
{
    /// <summary>Adds services to the host before it is built (the Orleans silo).</summary>
    public Action<WebApplicationBuilder, ServingContext>? ConfigureBuilder { get; init; }
    /// <summary>The backend jobs go to, made from the built host's services; default: this node's scheduler.</summary>
    public Func<IServiceProvider, ServingContext, IGenerationBackend>? Backend { get; init; }
    /// <summary>Maps endpoints beside the server's own.</summary>
    public Action<WebApplication, ServingContext>? Map { get; init; }
}
