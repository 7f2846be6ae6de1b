// Every request field the server knows, with what it does here: the one list that both checks incoming requests and
// writes the field tables of README.md and docs/server.md (a test holds them to it). A field that is not
// implemented is refused with a 400 naming it as soon as it asks for something, so a client that wants a tool call
// or JSON never gets prose without a word; fields that change nothing about the output are accepted; a field not
// in the list is refused as OpenAI refuses it ("Unrecognized request argument supplied").
using System.Text;
using System.Text.Json;

namespace R1Sharp.Server.Protocol;

[Flags]
public enum ApiEndpoints
{
    Chat = 1,
    Completions = 2,
    Both = Chat | Completions,
}

public enum FieldStatus
{
    /// <summary>Implemented.</summary>
    Supported,
    /// <summary>Accepted; it changes nothing about the output (bookkeeping fields, or what this server always does).</summary>
    NoEffect,
    /// <summary>Refused with a 400 naming it, unless its value asks for nothing (see <see cref="RequestField.AsksFor"/>).</summary>
    NotImplemented,
}

/// <param name="Name">The JSON name.</param>
/// <param name="Endpoints">Where it is a field.</param>
/// <param name="Status">What the server does with it.</param>
/// <param name="Meaning">One line for the tables.</param>
/// <param name="AsksFor">
/// For a field that is not implemented: whether a value asks for the missing feature; null means every value does.
/// A JSON null is the same as leaving a field out.
/// </param>
public sealed record RequestField(string Name, ApiEndpoints Endpoints, FieldStatus Status, string Meaning,
    Func<JsonElement, bool>? AsksFor = null);

public static class RequestFields
{
    private static bool NotFalse(JsonElement v) => v.ValueKind != JsonValueKind.False;
    private static bool NotEmpty(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Array => v.GetArrayLength() > 0,
        JsonValueKind.Object => v.EnumerateObject().Any(),
        JsonValueKind.String => v.GetString()!.Length > 0,
        _ => true,
    };
    private static bool NotNumber(JsonElement v, double inert) => !(v.ValueKind == JsonValueKind.Number && v.GetDouble() == inert);

    public static readonly IReadOnlyList<RequestField> All =
    [
        new("model", ApiEndpoints.Both, FieldStatus.Supported, "optional; when given it must be the served id (else 404)"),
        new("messages", ApiEndpoints.Chat, FieldStatus.Supported,
            "roles `system` (or `developer`), `user`, `assistant` (with `tool_calls`), `tool`; content a string or text parts. Reasoning in earlier assistant turns (`<think>…</think>` in `content`, or `reasoning_content`) is dropped from the prompt, as the R1 template does"),
        new("prompt", ApiEndpoints.Completions, FieldStatus.Supported, "a string, strings, token ids, or arrays of ids; no chat template"),
        new("max_tokens", ApiEndpoints.Both, FieldStatus.Supported, "default: the rest of the context (chat), 16 (completions); prompt + max past `--ctx` is a 400"),
        new("max_completion_tokens", ApiEndpoints.Chat, FieldStatus.Supported, "the newer name of `max_tokens`"),
        new("temperature", ApiEndpoints.Both, FieldStatus.Supported, "default 0.6 (the R1 model card); 0 is greedy"),
        new("top_p", ApiEndpoints.Both, FieldStatus.Supported, "default 0.95 (the R1 model card)"),
        new("top_k", ApiEndpoints.Both, FieldStatus.Supported, "vLLM/llama.cpp extension"),
        new("min_p", ApiEndpoints.Both, FieldStatus.Supported, "vLLM/llama.cpp extension"),
        new("repetition_penalty", ApiEndpoints.Both, FieldStatus.Supported, "vLLM/llama.cpp extension"),
        new("presence_penalty", ApiEndpoints.Both, FieldStatus.Supported, "OpenAI semantics over the generated tokens"),
        new("frequency_penalty", ApiEndpoints.Both, FieldStatus.Supported, "OpenAI semantics over the generated tokens"),
        new("seed", ApiEndpoints.Both, FieldStatus.Supported, "reproducible sampling; choice *i* of `n` uses seed + *i*"),
        new("stop", ApiEndpoints.Both, FieldStatus.Supported, "a string or an array; the output ends before the first match (not included)"),
        new("n", ApiEndpoints.Both, FieldStatus.Supported, "choices per request (at most 16)"),
        new("stream", ApiEndpoints.Both, FieldStatus.Supported, "SSE chunks, ended by `data: [DONE]`"),
        new("stream_options", ApiEndpoints.Both, FieldStatus.Supported,
            "`include_usage`: a last chunk with `choices: []` and `usage` before `data: [DONE]`"),
        new("chat_template_kwargs", ApiEndpoints.Chat, FieldStatus.Supported,
            "`{\"enable_thinking\": false}` (vLLM, llama.cpp; or `\"thinking\"`, DeepSeek-V3.1's name): the prompt ends with an empty think block and everything generated is content"),
        new("reasoning_budget", ApiEndpoints.Chat, FieldStatus.Supported,
            "llama.cpp's name: most reasoning tokens, then `\\n</think>\\n\\n` is forced; `-1` (default) unlimited, `0` thinking off"),
        new("ignore_eos", ApiEndpoints.Both, FieldStatus.Supported, "vLLM extension: generate past end-of-sequence (benchmarks)"),
        new("tools", ApiEndpoints.Chat, FieldStatus.Supported,
            "function tools, listed in the prompt in the model's format; calls come back in `message.tool_calls` (streamed as `delta.tool_calls`) with `finish_reason: \"tool_calls\"`"),
        new("tool_choice", ApiEndpoints.Chat, FieldStatus.Supported,
            "`\"auto\"` (default with tools; calls to `strict` tools follow their schemas once the model opens a block of calls), `\"none\"` (tools neither listed nor parsed), `\"required\"` or `{\"type\":\"function\",\"function\":{\"name\":...}}` (a grammar forces calls whose arguments follow the schemas)"),
        new("parallel_tool_calls", ApiEndpoints.Chat, FieldStatus.Supported, "`false`: at most one call (forced by the grammar where one applies, else the first is returned)"),
        new("response_format", ApiEndpoints.Chat, FieldStatus.Supported,
            "`{\"type\":\"json_object\"}` or `{\"type\":\"json_schema\",\"json_schema\":{\"name\",\"schema\",\"strict\"}}`: the answer (after the reasoning, which stays free) follows a grammar compiled from the schema; a schema keyword that cannot be compiled is a 400 naming it"),
        new("grammar", ApiEndpoints.Both, FieldStatus.Supported, "llama.cpp extension: a GBNF grammar the answer (or completion) follows"),
        new("logprobs", ApiEndpoints.Both, FieldStatus.Supported,
            "chat: `true` gives `choices[].logprobs.content[]` (`token`, `logprob`, `bytes`, `top_logprobs`), the reasoning's tokens in `reasoning_content[]` beside it; completions: an integer 0-20, the legacy lists (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`). The log-softmax of the distribution sampled from: after penalties, the grammar's mask and temperature (0 reported as 1), before top-k/top-p/min-p; forced tokens 0"),
        new("top_logprobs", ApiEndpoints.Chat, FieldStatus.Supported, "0-20 most likely tokens at each position; needs `logprobs: true`"),

        new("user", ApiEndpoints.Both, FieldStatus.NoEffect, "an end-user id for the caller's records"),
        new("metadata", ApiEndpoints.Chat, FieldStatus.NoEffect, "the caller's tags"),
        new("store", ApiEndpoints.Chat, FieldStatus.NoEffect, "nothing is stored"),
        new("service_tier", ApiEndpoints.Chat, FieldStatus.NoEffect, "one tier"),
        new("safety_identifier", ApiEndpoints.Chat, FieldStatus.NoEffect, "an end-user id for the caller's records"),
        new("prompt_cache_key", ApiEndpoints.Chat, FieldStatus.NoEffect, "prefix caching is automatic (a slot's cached prefix is reused)"),

        new("functions", ApiEndpoints.Chat, FieldStatus.NotImplemented, "the deprecated form of `tools`", NotEmpty),
        new("function_call", ApiEndpoints.Chat, FieldStatus.NotImplemented, "the deprecated form of `tool_choice`; `\"none\"` is accepted",
            v => !(v.ValueKind == JsonValueKind.String && v.GetString() == "none")),
        new("logit_bias", ApiEndpoints.Both, FieldStatus.NotImplemented, "an empty map is accepted", NotEmpty),
        new("reasoning_effort", ApiEndpoints.Chat, FieldStatus.NotImplemented, "use `reasoning_budget` or `chat_template_kwargs`"),
        new("verbosity", ApiEndpoints.Chat, FieldStatus.NotImplemented, "output length hints"),
        new("modalities", ApiEndpoints.Chat, FieldStatus.NotImplemented, "`[\"text\"]` is accepted",
            v => !(v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String && e.GetString() == "text"))),
        new("audio", ApiEndpoints.Chat, FieldStatus.NotImplemented, "audio output"),
        new("prediction", ApiEndpoints.Chat, FieldStatus.NotImplemented, "predicted outputs"),
        new("web_search_options", ApiEndpoints.Chat, FieldStatus.NotImplemented, "web search"),
        new("echo", ApiEndpoints.Completions, FieldStatus.NotImplemented, "`false` is accepted", NotFalse),
        new("best_of", ApiEndpoints.Completions, FieldStatus.NotImplemented, "`1` is accepted", v => NotNumber(v, 1)),
        new("suffix", ApiEndpoints.Completions, FieldStatus.NotImplemented, "an empty string is accepted", NotEmpty),
    ];

    private static readonly Dictionary<string, RequestField> s_byName = All.ToDictionary(f => f.Name, StringComparer.Ordinal);

    public static RequestField? Find(string name) => s_byName.GetValueOrDefault(name);

    /// <summary>
    /// The first top-level field of <paramref name="body"/> that <paramref name="endpoint"/> cannot honour, with why,
    /// or null: a field of the other endpoint or no endpoint, or one not implemented whose value asks for something.
    /// </summary>
    public static (string Field, string Message)? FindRefused(JsonElement body, ApiEndpoints endpoint)
    {
        if (body.ValueKind != JsonValueKind.Object) return null;
        foreach (var p in body.EnumerateObject())
        {
            if (p.Value.ValueKind == JsonValueKind.Null) continue;
            if (!s_byName.TryGetValue(p.Name, out var f) || (f.Endpoints & endpoint) == 0)
                return (p.Name, $"Unrecognized request argument supplied: {p.Name}");
            if (f.Status == FieldStatus.NotImplemented && (f.AsksFor?.Invoke(p.Value) ?? true))
                return (p.Name, $"'{p.Name}' is not supported by this server yet ({f.Meaning})");
        }
        return null;
    }

    /// <summary>The Markdown table of the fields of <paramref name="status"/> (all when null), as README.md and docs/server.md show them.</summary>
    public static string MarkdownTable(FieldStatus? status = null)
    {
        var sb = new StringBuilder();
        sb.Append(status is null ? "| field | endpoints | status | meaning |\n|---|---|---|---|\n" : "| field | endpoints | meaning |\n|---|---|---|\n");
        foreach (var f in All)
        {
            if (status is not null && f.Status != status) continue;
            string where = f.Endpoints switch { ApiEndpoints.Chat => "chat", ApiEndpoints.Completions => "completions", _ => "both" };
            string state = f.Status switch { FieldStatus.Supported => "supported", FieldStatus.NoEffect => "accepted, no effect", _ => "400 (not implemented)" };
            sb.Append($"| `{f.Name}` | {where} |");
            if (status is null) sb.Append($" {state} |");
            sb.Append($" {f.Meaning} |\n");
        }
        return sb.ToString();
    }
}
