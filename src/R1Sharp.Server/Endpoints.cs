// The routes, and nothing else: each maps to a serving class; the API key guards /v1/*. / is the chat page.
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Prometheus;
using R1Sharp.Server.Protocol;

namespace R1Sharp.Server;

internal static class Endpoints
{
    public static void Map(WebApplication app, ServingContext s)
    {
        if (s.Options.ApiKey is { } key) app.Use(RequireApiKey(key));
        var chat = new ChatServing(s);
        var completions = new CompletionServing(s);
        app.MapPost("/v1/chat/completions", ctx => Guard(ctx, "chat", chat.HandleAsync, s, app.Logger));
        app.MapPost("/v1/completions", ctx => Guard(ctx, "completions", completions.HandleAsync, s, app.Logger));
        app.MapGet("/v1/models", ctx => Serving.WriteJsonAsync(ctx,
            new ModelList([new ModelCard(s.ModelId, s.Created, "r1sharp", s.Scheduler.ContextSize)]), ProtocolJson.Wire.ModelList));
        app.MapGet("/health", async ctx =>
        {
            var sc = s.Scheduler;
            ctx.Response.StatusCode = sc.Accepting ? 200 : 503;
            ctx.Response.ContentType = "application/json";
            await System.Text.Json.JsonSerializer.SerializeAsync(ctx.Response.Body,
                new HealthResponse(sc.Accepting ? "ok" : "shutting_down", sc.Running, sc.Queued, sc.Options.Slots, sc.IdleSlots), ProtocolJson.Wire.HealthResponse);
        });
        app.MapMetrics("/metrics", s.Metrics.Registry);
        app.MapGet("/", ChatPage.WriteAsync);
        app.MapFallback(ctx => ApiException.WriteAsync(ctx, 404,
            new ErrorResponse(new ErrorBody($"no route {ctx.Request.Method} {ctx.Request.Path}", "invalid_request_error", null, "not_found"))));
    }

    /// <summary>
    /// Runs an API handler: its ApiException becomes the OpenAI error object; a client gone away ends it quietly (its
    /// requests were cancelled with it); anything else is a bug, logged, and answered with a 500 error object (or, in
    /// the middle of a stream, a connection closed before the stream's end). Each request is counted by its status.
    /// </summary>
    private static async Task Guard(HttpContext ctx, string endpoint, Func<HttpContext, Task> handler, ServingContext s, ILogger log)
    {
        s.Trimmer?.Begin();
        try
        {
            await handler(ctx);
        }
        catch (ApiException e)
        {
            if (!ctx.Response.HasStarted) await e.WriteAsync(ctx);
            else if (ctx.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true && !ctx.RequestAborted.IsCancellationRequested)
                await Serving.WriteErrorEventAsync(ctx, e.ToResponse()); // e.g. the node running the request was lost mid-stream
        }
        catch (Exception) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away; its requests were cancelled with it
        }
        catch (Exception e)
        {
            log.LogError(e, "{Endpoint}: unexpected {Type}", endpoint, e.GetType().Name);
            if (ctx.Response.HasStarted) ctx.Abort();
            else await new ApiException(500, $"internal error ({e.GetType().Name}); the server's log has the details", "server_error").WriteAsync(ctx);
        }
        finally
        {
            s.Metrics.Answered(endpoint, ctx.RequestAborted.IsCancellationRequested ? 499 : ctx.Response.StatusCode);
            s.Trimmer?.End();
        }
    }

    /// <summary>OpenAI-style bearer key on /v1/*; /health and /metrics stay open for probes and scrapers.</summary>
    private static Func<HttpContext, RequestDelegate, Task> RequireApiKey(string key)
    {
        byte[] expected = Encoding.UTF8.GetBytes("Bearer " + key);
        return (ctx, next) =>
        {
            if (!ctx.Request.Path.StartsWithSegments("/v1")) return next(ctx);
            string given = ctx.Request.Headers.Authorization.ToString();
            if (CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), expected)) return next(ctx);
            string message = given.Length == 0
                ? "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
                : "Incorrect API key provided.";
            return ApiException.WriteAsync(ctx, 401, new ErrorResponse(new ErrorBody(message, "invalid_request_error", null, "invalid_api_key")));
        };
    }
}
