// The serving layer shared by the endpoints: reading and checking a request, turning OpenAI sampling fields into
// engine requests, submitting them to the backend (429 when the queue is full), merging the n choices' streams, and
// SSE framing.
using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Server.Protocol;

namespace R1Sharp.Server;

/// <summary>What every endpoint needs: the model, its scheduler, the backend that runs jobs, metrics and the served id.</summary>
public sealed class ServingContext
{
    public required LoadedModel Model { get; init; }
    /// <summary>This node's engine (/health, the context size).</summary>
    public required Scheduler Scheduler { get; init; }
    /// <summary>Where generation jobs run: this node's scheduler unless a cluster routes them.</summary>
    public required IGenerationBackend Backend { get; set; }
    public required ServerMetrics Metrics { get; init; }
    public required string ModelId { get; init; }
    public required ServerOptions Options { get; init; }
    public required ChatTemplateKind Template { get; init; }
    internal IdleTrimmer? Trimmer { get; init; }
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}

internal static class Serving
{
    public const int MaxChoices = 16;

    /// <summary>
    /// Reads the request body, refuses fields <paramref name="endpoint"/> cannot honour (<see cref="RequestFields"/>),
    /// and binds the rest.
    /// </summary>
    public static async Task<T> ReadBodyAsync<T>(HttpContext ctx, JsonTypeInfo<T> info, ApiEndpoints endpoint, long maxBytes)
    {
        // the body is read into a pooled buffer: a stream of hostile 1 MB bodies would otherwise leave a trail of
        // large-object-heap arrays, which the GC gives back late
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Clamp(ctx.Request.ContentLength ?? 0, 16 << 10, maxBytes + 1));
        try
        {
            int length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                int n = await ctx.Request.Body.ReadAsync(buffer.AsMemory(length), ctx.RequestAborted);
                if (n == 0) break;
                length += n;
            }
            return Bind(new ReadOnlyMemory<byte>(buffer, 0, length), info, endpoint);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ApiException(413, $"the request body is larger than {maxBytes} bytes", code: "request_too_large");
        }
        catch (BadHttpRequestException e)
        {
            // a body the HTTP layer could not read (a malformed chunk, one cut short or sent too slowly)
            throw new ApiException(e.StatusCode, $"could not read the request body: {e.Message}");
        }
        catch (IOException e) when (!ctx.RequestAborted.IsCancellationRequested)
        {
            // Kestrel reports some malformed chunked bodies so (a chunk size past 2^31 is an IOException over an OverflowException)
            throw ApiException.Invalid($"could not read the request body: {e.Message}");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A request body as the endpoint's record: a JSON object whose fields <paramref name="endpoint"/> can all honour
    /// (<see cref="RequestFields"/>), each of its shape. Anything else is an ApiException (400), never another error.
    /// </summary>
    public static T Bind<T>(ReadOnlyMemory<byte> bytes, JsonTypeInfo<T> info, ApiEndpoints endpoint)
    {
        try
        {
            using (var doc = JsonDocument.Parse(bytes))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiException.Invalid("the request body must be a JSON object");
                CheckText(bytes.Span);
                if (RequestFields.FindRefused(doc.RootElement, endpoint) is var (field, message)) throw ApiException.Invalid(message, field);
            }
            var value = JsonSerializer.Deserialize(bytes.Span, info);
            return value ?? throw ApiException.Invalid("the request body must be a JSON object");
        }
        catch (JsonException e)
        {
            throw ApiException.Invalid($"could not parse the JSON body of the request: {e.Message}");
        }
    }

    /// <summary>
    /// Every string and member name of a parsed body must be Unicode text: the parser takes invalid UTF-8 inside a
    /// string and an escaped half of a surrogate pair, and only reading the string then fails (once a 500).
    /// </summary>
    private static void CheckText(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName)) continue;
            try { reader.GetString(); }
            catch (InvalidOperationException)
            {
                throw ApiException.Invalid("the request body holds a string that is not Unicode text (invalid UTF-8, or half of an escaped surrogate pair)");
            }
        }
    }

    public static void CheckModel(ServingContext s, string? model)
    {
        if (model is not null && model != s.ModelId)
            throw new ApiException(404, $"The model '{model}' does not exist (this server serves '{s.ModelId}')", param: "model", code: "model_not_found");
    }

    public static int CheckChoices(int? n)
    {
        int v = n ?? 1;
        if (v < 1 || v > MaxChoices) throw ApiException.Invalid($"n must be between 1 and {MaxChoices} (got {v})", "n");
        return v;
    }

    /// <summary>max_tokens if given (checked against the context), else all the context the prompt leaves.</summary>
    public static int ResolveMaxTokens(ServingContext s, int? requested, int promptTokens, string promptParam, string maxParam)
    {
        int ctx = s.Scheduler.ContextSize;
        if (requested is int m && m < 1) throw ApiException.Invalid($"{maxParam} must be at least 1 (got {m})", maxParam);
        if (promptTokens == 0) throw ApiException.Invalid("the prompt is empty", promptParam);
        if (promptTokens >= ctx || (requested is int r && (long)promptTokens + r > ctx))
            throw ApiException.Invalid(
                $"This model's maximum context length is {ctx} tokens. However, you requested {promptTokens + (long)(requested ?? 1)} tokens " +
                $"({promptTokens} in the prompt, {requested ?? 1} for the completion). Please reduce the prompt or {maxParam}.",
                promptParam, "context_length_exceeded");
        return requested ?? ctx - promptTokens;
    }

    /// <summary>The engine request of one choice: the prompt, the length limit, and the request's sampling and stops.</summary>
    public static EngineRequest ChoiceRequest(GenerationRequest req, int[] prompt, int maxTokens, int choice) => new()
    {
        Prompt = prompt,
        MaxTokens = maxTokens,
        Sampling = Sampling(req, choice),
        StopStrings = req.Stop ?? [],
        IgnoreEos = req.IgnoreEos ?? false,
    };

    internal static SamplingParams Sampling(GenerationRequest req, int choice)
    {
        static void Range(float? v, float lo, float hi, string name)
        {
            if (v is float f && !(f >= lo && f <= hi)) throw ApiException.Invalid($"{name} must be between {lo} and {hi} (got {f})", name);
        }
        Range(req.Temperature, 0, 2, "temperature");
        if (req.TopP is float p && !(p > 0 && p <= 1)) throw ApiException.Invalid($"top_p must be in (0, 1] (got {p})", "top_p");
        Range(req.MinP, 0, 1, "min_p");
        Range(req.PresencePenalty, -2, 2, "presence_penalty");
        Range(req.FrequencyPenalty, -2, 2, "frequency_penalty");
        if (req.RepetitionPenalty is float rp && !(rp > 0 && rp <= 10))
            throw ApiException.Invalid($"repetition_penalty must be in (0, 10] (got {rp})", "repetition_penalty");
        return new SamplingParams
        {
            // the R1 model card's advice when the request leaves them out
            Temperature = req.Temperature ?? 0.6f,
            TopP = req.TopP ?? 0.95f,
            TopK = Math.Max(0, req.TopK ?? 0),
            MinP = req.MinP ?? 0,
            PresencePenalty = req.PresencePenalty ?? 0,
            FrequencyPenalty = req.FrequencyPenalty ?? 0,
            RepetitionPenalty = req.RepetitionPenalty ?? 1,
            RepeatLastN = -1, // OpenAI penalties count every generated token
            Seed = req.Seed is long sd ? unchecked((ulong)sd + (ulong)choice) : (ulong)Random.Shared.NextInt64(),
        };
    }

    /// <summary>
    /// Submits every choice's job; the errors map to HTTP. On this node's scheduler the group is queued all or none (a
    /// bad one is a 400 whatever the load, and a full queue refuses the whole group, leaving nothing to cancel);
    /// through another backend one job at a time, the others cancelled if one cannot be queued.
    /// </summary>
    public static async Task<IAsyncEnumerable<JobChunk>[]> SubmitAllAsync(ServingContext s, IReadOnlyList<GenerationJob> jobs, CancellationTokenSource cts)
    {
        var streams = new IAsyncEnumerable<JobChunk>[jobs.Count];
        try
        {
            if (s.Backend is LocalBackend local) return local.SubmitAll(jobs, cts.Token);
            for (int i = 0; i < jobs.Count; i++) streams[i] = await s.Backend.SubmitAsync(jobs[i], cts.Token);
            return streams;
        }
        catch (QueueFullException e)
        {
            cts.Cancel();
            throw new ApiException(429, $"The server is busy: {e.Message}", "rate_limit_error", code: "queue_full");
        }
        catch (InvalidOperationException e)
        {
            cts.Cancel();
            throw new ApiException(503, e.Message, "server_error", code: "shutting_down");
        }
        catch (NodeUnavailableException e)
        {
            cts.Cancel();
            throw Unavailable(e);
        }
        catch (ArgumentException e)
        {
            cts.Cancel();
            throw ApiException.Invalid(e.Message);
        }
    }

    private static ApiException Unavailable(NodeUnavailableException e) => new(503, e.Message, "server_error", code: "node_unavailable");

    /// <summary>
    /// The chunks of all choices as they come, tagged with the choice index. A lost node surfaces as an ApiException
    /// (503): a JSON error before the response starts, an SSE error event after.
    /// </summary>
    public static async IAsyncEnumerable<(int Index, JobChunk Chunk)> Merge(IAsyncEnumerable<JobChunk>[] streams,
        [EnumeratorCancellation] CancellationToken ct)
    {
        await using var e = MergeRaw(streams, ct).GetAsyncEnumerator(ct);
        while (true)
        {
            try
            {
                if (!await e.MoveNextAsync()) yield break;
            }
            catch (NodeUnavailableException x)
            {
                throw Unavailable(x);
            }
            yield return e.Current;
        }
    }

    private static async IAsyncEnumerable<(int Index, JobChunk Chunk)> MergeRaw(IAsyncEnumerable<JobChunk>[] streams,
        [EnumeratorCancellation] CancellationToken ct)
    {
        if (streams.Length == 1)
        {
            await foreach (var c in streams[0].WithCancellation(ct)) yield return (0, c);
            yield break;
        }
        var merged = Channel.CreateUnbounded<(int, JobChunk)>();
        var pumps = streams.Select(async (stream, i) =>
        {
            await foreach (var c in stream.WithCancellation(ct)) merged.Writer.TryWrite((i, c));
        }).ToArray();
        _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception?.GetBaseException()), TaskScheduler.Default);
        await foreach (var item in merged.Reader.ReadAllAsync(ct)) yield return item;
    }

    public static string FinishReasonName(FinishReason r) => r switch
    {
        FinishReason.Stop => "stop",
        // cancelled requests only reach a client on shutdown: the output was cut short
        _ => "length",
    };

    public static void StartEventStream(HttpContext ctx)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
    }

    private static readonly byte[] s_data = "data: "u8.ToArray(), s_end = "\n\n"u8.ToArray(), s_done = "data: [DONE]\n\n"u8.ToArray();

    public static async Task WriteEventAsync<T>(HttpContext ctx, T value, JsonTypeInfo<T> info)
    {
        var body = ctx.Response.Body;
        await body.WriteAsync(s_data, ctx.RequestAborted);
        await JsonSerializer.SerializeAsync(body, value, info, ctx.RequestAborted);
        await body.WriteAsync(s_end, ctx.RequestAborted);
        await body.FlushAsync(ctx.RequestAborted);
    }

    /// <summary>An error after the stream has started, as vLLM and llama.cpp send it: an event holding the error object, then [DONE].</summary>
    public static async Task WriteErrorEventAsync(HttpContext ctx, ErrorResponse error)
    {
        await WriteEventAsync(ctx, error, ProtocolJson.Wire.ErrorResponse);
        await WriteDoneAsync(ctx);
    }

    public static async Task WriteDoneAsync(HttpContext ctx)
    {
        await ctx.Response.Body.WriteAsync(s_done, ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    public static async Task WriteJsonAsync<T>(HttpContext ctx, T value, JsonTypeInfo<T> info)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, info, ctx.RequestAborted);
    }

    public static string NewId(string prefix) => prefix + Guid.NewGuid().ToString("N")[..24];
}

/// <summary>Latency metrics of one request: time to its first token, then the gap before each later one.</summary>
internal sealed class TokenClock(ServerMetrics metrics, long started)
{
    private long _last;

    public void Tokens(int count)
    {
        if (count <= 0) return;
        long now = Stopwatch.GetTimestamp();
        if (_last == 0) metrics.TimeToFirstToken(Stopwatch.GetElapsedTime(started, now));
        else metrics.InterTokenLatency(Stopwatch.GetElapsedTime(_last, now), count);
        _last = now;
    }
}
