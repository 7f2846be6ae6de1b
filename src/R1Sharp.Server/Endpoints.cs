// The routes, and nothing else: each maps to a serving class; the API key guards /v1/*. / is the chat page.
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
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
        app.MapPost("/v1/chat/completions", ctx => Guard(ctx, chat.HandleAsync));
        app.MapPost("/v1/completions", ctx => Guard(ctx, completions.HandleAsync));
        app.MapGet("/v1/models", ctx => Serving.WriteJsonAsync(ctx,
            new ModelList([new ModelCard(s.ModelId, s.Created, "r1sharp", s.Scheduler.ContextSize)]), ProtocolJson.Wire.ModelList));
        app.MapGet("/health", async ctx =>
        {
            var sc = s.Scheduler;
            ctx.Response.StatusCode = sc.Accepting ? 200 : 503;
            ctx.Response.ContentType = "application/json";
            await System.Text.Json.JsonSerializer.SerializeAsync(ctx.Response.Body,
                new HealthResponse(sc.Accepting ? "ok" : "shutting_down", sc.Running, sc.Queued, sc.Options.Slots), ProtocolJson.Wire.HealthResponse);
        });
        app.MapMetrics("/metrics", s.Metrics.Registry);
        app.MapGet("/", ChatPage.WriteAsync);
        app.MapFallback(ctx => ApiException.WriteAsync(ctx, 404,
            new ErrorResponse(new ErrorBody($"no route {ctx.Request.Method} {ctx.Request.Path}", "invalid_request_error", null, "not_found"))));
    }

    private static async Task Guard(HttpContext ctx, Func<HttpContext, Task> handler)
    {
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
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away; its requests were cancelled with it
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
