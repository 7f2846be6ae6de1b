// What every answer must be: a well-formed success (a chat.completion or text_completion object, or an event
// stream of chunks ending with [DONE]) or an OpenAI error object with the status its type goes with; never a 5xx.
// What the client saw is tallied so that the server's /metrics counters can be held to it afterwards.
using System.Text.Json;

namespace R1Sharp.Soak;

public sealed class Violation(string message) : Exception(message);

/// <summary>One checked answer: its outcome label and what it says about the server's counters.</summary>
public sealed record Checked(string Outcome, int Status, int ChoicesStop = 0, int ChoicesLength = 0, int CompletionTokens = 0, string? Text = null);

public static class ResponseChecker
{
    public static Checked Check(Scenario s, RawResponse r)
    {
        if (s.Request.Mode == ReadMode.CloseAfterSend) return new("dropped before the first byte", 0);
        if (r.Status == 0) throw new Violation("the server closed the connection without a status line");
        if (r.Status >= 500) throw new Violation($"HTTP {r.Status}: {Excerpt(r.BodyText)}");
        if (!s.Allowed.Contains(r.Status))
            throw new Violation($"HTTP {r.Status} where {string.Join("/", s.Allowed)} was due: {Excerpt(r.BodyText)}");
        if (r.Status != 200)
        {
            if (s.HttpLayer) return new($"{r.Status} (HTTP layer)", r.Status);
            if (r.ClosedByClient) return new($"{r.Status}, dropped after the headers", r.Status);
            CheckError(s, r);
            return new(r.Status.ToString(), r.Status);
        }
        if (s.Request.Mode == ReadMode.CloseAfterHeaders) return new("200, dropped after the headers", 200);
        if (s.Stream)
        {
            if (!r.ContentType.StartsWith("text/event-stream", StringComparison.Ordinal)) throw new Violation($"a stream with Content-Type '{r.ContentType}'");
            var (stop, length, tokens, text) = CheckStream(s, r);
            return r.ClosedByClient
                ? new($"200, dropped mid-stream", 200)
                : new(s.Request.Mode == ReadMode.Slow ? "200 stream (slow reader)" : "200 stream", 200, stop, length, tokens, text);
        }
        if (!r.Complete) throw new Violation("a response body cut short");
        var (st, len, tok, txt) = CheckWhole(s, r);
        return new(s.Request.BodyPieces > 1 ? "200 (slow sender)" : "200", 200, st, len, tok, txt);
    }

    private static void CheckError(Scenario s, RawResponse r)
    {
        if (!r.Complete) throw new Violation($"an error response ({r.Status}) cut short");
        if (!r.ContentType.StartsWith("application/json", StringComparison.Ordinal)) throw new Violation($"an error ({r.Status}) with Content-Type '{r.ContentType}'");
        JsonElement e;
        try { e = JsonDocument.Parse(r.Body).RootElement.GetProperty("error"); }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new Violation($"an error ({r.Status}) that is not an OpenAI error object: {Excerpt(r.BodyText)}");
        }
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("message", out var m) || m.ValueKind != JsonValueKind.String || m.GetString()!.Length == 0
            || !e.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("param", out var p) || p.ValueKind is not (JsonValueKind.String or JsonValueKind.Null)
            || !e.TryGetProperty("code", out var c) || c.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            throw new Violation($"a malformed error object: {Excerpt(r.BodyText)}");
        string type = t.GetString()!, code = c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
        string want = r.Status == 429 ? "rate_limit_error" : "invalid_request_error";
        if (type != want) throw new Violation($"HTTP {r.Status} with error type '{type}' (expected '{want}')");
        if (r.Status == 429 && code != "queue_full") throw new Violation($"429 with code '{code}'");
        if (r.Status == 413 && code != "request_too_large") throw new Violation($"413 with code '{code}'");
        if (s.ErrorCode is { } wantCode && r.Status != 429 && code != wantCode) throw new Violation($"HTTP {r.Status} with code '{code}' (expected '{wantCode}')");
        if (m.GetString()!.Contains("   at ", StringComparison.Ordinal)) throw new Violation("an error message with a stack trace");
    }

    private static (int Stop, int Length, int Tokens, string Text) CheckWhole(Scenario s, RawResponse r)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(r.Body).RootElement; }
        catch (JsonException e) { throw new Violation($"a 200 body that is not JSON ({e.Message}): {Excerpt(r.BodyText)}"); }
        bool chat = s.Endpoint == Endpoint.Chat;
        Expect(root.GetProperty("object").GetString() == (chat ? "chat.completion" : "text_completion"), "object", root);
        var choices = root.GetProperty("choices");
        Expect(choices.GetArrayLength() == s.Choices, $"{s.Choices} choices", root);
        int stop = 0, length = 0;
        var texts = new List<string>();
        for (int i = 0; i < s.Choices; i++)
        {
            var c = choices[i];
            Expect(c.GetProperty("index").GetInt32() == i, "choice index", root);
            string finish = c.GetProperty("finish_reason").GetString()!;
            Expect(finish is "stop" or "length" or "tool_calls", "finish_reason", root);
            if (finish == "length") length++; else stop++;
            string text;
            if (chat)
            {
                var m = c.GetProperty("message");
                Expect(m.GetProperty("role").GetString() == "assistant", "role", root);
                var content = m.GetProperty("content");
                Expect(content.ValueKind is JsonValueKind.String or JsonValueKind.Null, "content", root);
                string reasoning = m.TryGetProperty("reasoning_content", out var rc) && rc.ValueKind == JsonValueKind.String ? rc.GetString()! : "";
                text = reasoning + "\u0001" + (content.ValueKind == JsonValueKind.String ? content.GetString() : "");
                CheckStops(s, reasoning, root);
                CheckStops(s, content.ValueKind == JsonValueKind.String ? content.GetString()! : "", root);
            }
            else
            {
                text = c.GetProperty("text").GetString()!;
                CheckStops(s, text, root);
            }
            texts.Add(text);
        }
        int tokens = CheckUsage(s, root.GetProperty("usage"), root);
        return (stop, length, tokens, string.Join("\u0002", texts));
    }

    private static (int Stop, int Length, int Tokens, string Text) CheckStream(Scenario s, RawResponse r)
    {
        bool chat = s.Endpoint == Endpoint.Chat;
        bool done = false;
        var finished = new string?[s.Choices];
        var texts = new System.Text.StringBuilder[s.Choices];
        for (int i = 0; i < s.Choices; i++) texts[i] = new();
        int tokens = 0;
        foreach (var data in r.Events)
        {
            if (done) throw new Violation("an event after [DONE]");
            if (data == "[DONE]") { done = true; continue; }
            JsonElement e;
            try { e = JsonDocument.Parse(data).RootElement; }
            catch (JsonException ex) { throw new Violation($"an event that is not JSON ({ex.Message}): {Excerpt(data)}"); }
            Expect(e.GetProperty("object").GetString() == (chat ? "chat.completion.chunk" : "text_completion"), "chunk object", e);
            var choices = e.GetProperty("choices");
            if (choices.GetArrayLength() == 0)
            {
                Expect(s.IncludeUsage, "a usage chunk only when asked for", e);
                tokens = CheckUsage(s, e.GetProperty("usage"), e);
                continue;
            }
            foreach (var c in choices.EnumerateArray())
            {
                int i = c.GetProperty("index").GetInt32();
                Expect(i >= 0 && i < s.Choices, "chunk index", e);
                Expect(finished[i] is null, "no chunk after a choice's finish_reason", e);
                if (chat)
                {
                    var d = c.GetProperty("delta");
                    if (d.TryGetProperty("reasoning_content", out var rc) && rc.ValueKind == JsonValueKind.String) texts[i].Append(rc.GetString());
                    if (d.TryGetProperty("content", out var ct) && ct.ValueKind == JsonValueKind.String) texts[i].Append('\u0001').Append(ct.GetString());
                }
                else texts[i].Append(c.GetProperty("text").GetString());
                if (c.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String)
                {
                    Expect(f.GetString() is "stop" or "length" or "tool_calls", "finish_reason", e);
                    finished[i] = f.GetString();
                }
            }
        }
        if (r.ClosedByClient) return (0, 0, 0, "");
        if (!r.Complete) throw new Violation("a stream cut short");
        if (!done) throw new Violation("a stream without [DONE]");
        if (finished.Any(f => f is null)) throw new Violation("a stream whose choices did not all finish");
        if (s.IncludeUsage && tokens == 0 && r.Events.Count(e => e.Contains("\"usage\"", StringComparison.Ordinal)) == 0)
            throw new Violation("include_usage without a usage chunk");
        foreach (var t in texts) foreach (var part in t.ToString().Split('\u0001')) CheckStops(s, part, default);
        return (finished.Count(f => f != "length"), finished.Count(f => f == "length"), tokens, string.Join("\u0002", texts.Select(t => t.ToString())));
    }

    private static int CheckUsage(Scenario s, JsonElement u, JsonElement root)
    {
        int prompt = u.GetProperty("prompt_tokens").GetInt32(), completion = u.GetProperty("completion_tokens").GetInt32();
        Expect(prompt > 0 && completion >= 0 && u.GetProperty("total_tokens").GetInt32() == prompt + completion, "usage adds up", root);
        if (s.MaxTokens is int max) Expect(completion <= (long)max * s.Choices, "completion tokens within max_tokens × choices", root);
        return completion;
    }

    private static void CheckStops(Scenario s, string text, JsonElement root)
    {
        foreach (var stop in s.Stop)
            if (text.Contains(stop, StringComparison.Ordinal))
                throw new Violation($"the output holds its stop string '{stop}': {Excerpt(text)}");
    }

    private static void Expect(bool ok, string what, JsonElement root)
    {
        if (!ok) throw new Violation($"{what} is wrong in {Excerpt(root.ValueKind == JsonValueKind.Undefined ? "" : root.GetRawText())}");
    }

    public static string Excerpt(string s) => s.Length <= 300 ? s : s[..300] + "...";
}
