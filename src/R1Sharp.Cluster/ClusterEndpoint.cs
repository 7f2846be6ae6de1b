// GET /v1/cluster: the members as this node sees them: membership state, the model check, slots, load and cache
// figures (polled, at most a status interval old), and what the prefix index holds for each.
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;

namespace R1Sharp.Cluster;

internal static class ClusterEndpoint
{
    public static async Task WriteAsync(HttpContext ctx, IServiceProvider services)
    {
        var d = services.GetRequiredService<NodeDirectory>();
        var members = d.Members.OrderBy(m => m.Name, StringComparer.Ordinal).Select(m =>
        {
            var l = m.Load;
            var (blocks, sequences) = d.Index.Size(m.Silo);
            return new MemberView(m.Name, m.Silo.ToParsableString(), StatusName(m.Status), m.Silo.Equals(d.Self),
                l?.HttpAddress is { Length: > 0 } h ? h : m.Identity?.HttpAddress,
                m.Identity is null ? "pending" : m.Mismatch is null ? "ok" : "mismatch", m.Mismatch,
                l?.Slots, l?.Running, l?.Queued, l?.Accepting, l?.Jobs, l?.ForwardedJobs, l?.PromptTokens, l?.CachedPromptTokens,
                l is { PromptTokens: > 0 } ? Math.Round((double)l.CachedPromptTokens / l.PromptTokens, 4) : null, blocks, sequences);
        }).ToList();
        var o = d.Options;
        var view = new ClusterView(members.First(m => m.Self).Name, o.Policy.ToString().ToLowerInvariant(), o.BlockTokens,
            o.CacheThreshold, o.BalanceAbsolute, o.BalanceRelative, members);
        ctx.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, view, ClusterJson.Default.ClusterView, ctx.RequestAborted);
    }

    private static string StatusName(SiloStatus s) => s switch
    {
        SiloStatus.Active => "active",
        SiloStatus.Joining or SiloStatus.Created => "joining",
        SiloStatus.ShuttingDown or SiloStatus.Stopping => "leaving",
        SiloStatus.Dead => "dead",
        _ => "unknown",
    };
}

internal sealed record ClusterView(string Self, string Policy, int BlockTokens, double CacheThreshold, int BalanceAbs, double BalanceRel,
    List<MemberView> Members);

internal sealed record MemberView(string Name, string Silo, string Status, bool Self, string? Http, string ModelCheck, string? Mismatch,
    int? Slots, int? Running, int? Queued, bool? Accepting, long? Jobs, long? ForwardedJobs, long? PromptTokens, long? CachedPromptTokens,
    double? CacheHitRate, int IndexBlocks, int IndexSequences);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ClusterView))]
internal sealed partial class ClusterJson : JsonSerializerContext;
