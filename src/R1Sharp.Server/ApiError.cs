// OpenAI-style errors: {"error":{"message","type","param","code"}} with the HTTP status they travel with.
using Microsoft.AspNetCore.Http;
using R1Sharp.Server.Protocol;

namespace R1Sharp.Server;

public sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiException Invalid(string message, string? param = null, string? code = null) => new(400, message, param: param, code: code);

    public ErrorResponse ToResponse() => new(new ErrorBody(Message, Type, Param, Code));

    public Task WriteAsync(HttpContext ctx) =>
        ctx.Response.HasStarted ? Task.CompletedTask : WriteAsync(ctx, Status, ToResponse());

    public static async Task WriteAsync(HttpContext ctx, int status, ErrorResponse error)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await System.Text.Json.JsonSerializer.SerializeAsync(ctx.Response.Body, error, ProtocolJson.Wire.ErrorResponse, ctx.RequestAborted);
    }
}
