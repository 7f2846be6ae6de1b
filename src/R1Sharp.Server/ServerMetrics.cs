// Prometheus metrics (prometheus-net), in a registry of their own so several servers can live in one process.
using Prometheus;
using R1Sharp.Engine;

namespace R1Sharp.Server;

public sealed class ServerMetrics
{
    private readonly Counter _prefillTokens, _decodeTokens, _requests, _draftTokens, _acceptedTokens, _http;
    private readonly Histogram _ttft, _itl, _step;

    /// <param name="weightsInMemory">Whether the model runs from its in-memory copy (else from the file mapping), where known.</param>
    public ServerMetrics(Func<Scheduler> scheduler, Func<bool>? weightsInMemory = null)
    {
        Registry = Metrics.NewCustomRegistry();
        // the process's own: resident memory, managed heap, open handles, GC counts (prometheus-net's standard set)
        DotNetStats.Register(Registry);
        var f = Metrics.WithCustomRegistry(Registry);
        _prefillTokens = f.CreateCounter("r1sharp_prompt_tokens_total", "Prompt tokens prefilled (cached prefix tokens excluded).");
        _decodeTokens = f.CreateCounter("r1sharp_generation_tokens_total", "Tokens generated (sampled or forced).");
        _draftTokens = f.CreateCounter("r1sharp_draft_tokens_total", "Draft tokens verified (speculative decoding).");
        _acceptedTokens = f.CreateCounter("r1sharp_draft_accepted_tokens_total", "Draft tokens the model accepted (speculative decoding).");
        _requests = f.CreateCounter("r1sharp_requests_finished_total", "Engine requests finished, by finish reason.", new CounterConfiguration { LabelNames = ["finish_reason"] });
        _http = f.CreateCounter("r1sharp_http_requests_total", "API requests answered, by endpoint and HTTP status (499: the client closed the connection first).",
            new CounterConfiguration { LabelNames = ["endpoint", "code"] });
        var queue = f.CreateGauge("r1sharp_queue_depth", "Requests waiting for a slot.");
        var active = f.CreateGauge("r1sharp_active_sequences", "Requests holding a slot.");
        var committed = f.CreateGauge("dotnet_gc_committed_bytes", "Memory the GC has committed (live objects, garbage not yet collected, and free space it keeps): most of the resident memory not taken by the weights.");
        var inMemory = f.CreateGauge("r1sharp_weights_in_memory", "1 once the model runs from its in-memory copy, 0 while it reads the file mapping.");
        _ttft = f.CreateHistogram("r1sharp_time_to_first_token_seconds", "From request arrival to its first generated token.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.005, 2, 14) });
        _itl = f.CreateHistogram("r1sharp_inter_token_latency_seconds", "Between successive generated tokens of one request.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
        _step = f.CreateHistogram("r1sharp_step_duration_seconds", "One scheduler step (batched forward and sampling).",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
        Registry.AddBeforeCollectCallback(() =>
        {
            var s = scheduler();
            queue.Set(s.Queued);
            active.Set(s.Running);
            committed.Set(GC.GetGCMemoryInfo().TotalCommittedBytes);
            if (weightsInMemory != null) inMemory.Set(weightsInMemory() ? 1 : 0);
        });
    }

    public CollectorRegistry Registry { get; }

    public void OnStep(StepStats s)
    {
        _prefillTokens.Inc(s.PrefillTokens);
        _decodeTokens.Inc(s.GeneratedTokens);
        _draftTokens.Inc(s.DraftTokens);
        _acceptedTokens.Inc(s.AcceptedTokens);
        _step.Observe(s.Elapsed.TotalSeconds);
    }

    public void TimeToFirstToken(TimeSpan t) => _ttft.Observe(t.TotalSeconds);

    public void InterTokenLatency(TimeSpan t, int tokens)
    {
        for (int i = 0; i < tokens; i++) _itl.Observe(t.TotalSeconds / tokens);
    }

    /// <summary>Counts an API request by its endpoint and the status it ended with (499 when the client went away first).</summary>
    public void Answered(string endpoint, int status) => _http.WithLabels(endpoint, status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();

    public void Finished(FinishReason reason) => _requests.WithLabels(reason.ToString().ToLowerInvariant()).Inc();
}
