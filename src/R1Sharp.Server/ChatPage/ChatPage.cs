// GET /: the chat page, one HTML file with inline CSS and JS embedded in this assembly (no static-file middleware,
// nothing on disk to deploy). It talks to /v1/chat/completions like any other client.
using Microsoft.AspNetCore.Http;

namespace R1Sharp.Server;

internal static class ChatPage
{
    private static readonly Lazy<byte[]> s_html = new(() =>
    {
        using var stream = typeof(ChatPage).Assembly.GetManifestResourceStream("R1Sharp.Server.chat.html")
                           ?? throw new InvalidOperationException("the chat page is missing from the server assembly");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static async Task WriteAsync(HttpContext ctx)
    {
        ctx.Response.ContentType = "text/html; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        // the page loads nothing from elsewhere; say so, so a browser refuses anything injected
        ctx.Response.Headers["Content-Security-Policy"] = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";
        await ctx.Response.Body.WriteAsync(s_html.Value, ctx.RequestAborted);
    }
}
