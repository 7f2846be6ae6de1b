// The requests of the soak: well-formed ones (streamed and not, n > 1, stop strings, tools, reasoning switches),
// clients that misbehave (drop the connection at chosen points, read or send slowly), and hostile bodies (truncated
// JSON, wrong types for every field, huge numbers, deep nesting, invalid UTF-8, bodies over the limit, unknown
// roles, empty messages). Each comes with what a correct server may answer.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Server.Protocol;

namespace R1Sharp.Soak;

/// <summary>Which endpoint a request goes to, as the server's request counter names it.</summary>
public enum Endpoint { Chat, Completions, Other }

public sealed record Scenario(string Kind, Endpoint Endpoint, RawRequest Request, int[] Allowed)
{
    /// <summary>Choices asked for (n, times the prompts of a completions request).</summary>
    public int Choices { get; init; } = 1;
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    public string[] Stop { get; init; } = [];
    public int? MaxTokens { get; init; }
    /// <summary>The error code the answer must carry when it is an error (null: any).</summary>
    public string? ErrorCode { get; init; }
    /// <summary>The request is refused before it reaches the application (Kestrel's own 400 for broken HTTP).</summary>
    public bool HttpLayer { get; init; }
}

public static class Scenarios
{
    private static readonly int[] Ok = [200, 429], BadRequest = [400], NotFound = [404], TooLarge = [413];
    private static readonly string[] Ops = ["+", "-", "*"];

    /// <summary>The weighted kinds: (name, weight, builder).</summary>
    private static readonly (string Name, int Weight, Func<Random, Scenario> Build)[] Kinds =
    [
        ("chat", 16, r => Chat(r, stream: false)),
        ("chat-stream", 16, r => Chat(r, stream: true)),
        ("tools", 2, Tools),
        ("structured", 3, Structured),
        ("bad-structured", 2, BadStructured),
        ("completions", 8, Completions),
        ("drop-before-first-byte", 4, DropBeforeFirstByte),
        ("drop-after-headers", 2, DropAfterHeaders),
        ("drop-mid-reasoning", 4, r => DropMidStream(r, "reasoning_content")),
        ("drop-mid-answer", 4, r => DropMidStream(r, "content")),
        ("slow-reader", 3, SlowReader),
        ("slow-sender", 2, SlowSender),
        ("truncated-json", 5, TruncatedJson),
        ("wrong-type", 8, WrongType),
        ("huge-number", 3, HugeNumber),
        ("deep-nesting", 2, DeepNesting),
        ("invalid-utf8", 2, InvalidUtf8),
        ("body-over-limit", 1, BodyOverLimit),
        ("unknown-role", 2, UnknownRole),
        ("empty-messages", 3, EmptyMessages),
        ("null-elements", 2, NullElements),
        ("unknown-field", 2, UnknownField),
        ("not-implemented-field", 2, NotImplementedField),
        ("wrong-model", 1, WrongModel),
        ("prompt-past-context", 2, PromptPastContext),
        ("bad-token-ids", 2, BadTokenIds),
        ("not-json", 2, NotJson),
        ("unknown-route", 1, UnknownRoute),
        ("broken-http", 1, BrokenHttp),
        ("bad-chunked-body", 1, BadChunkedBody),
    ];

    public static IEnumerable<string> KindNames => Kinds.Select(k => k.Name);

    /// <summary>A request of the kinds named (all when null), drawn by weight.</summary>
    public static Scenario Next(Random r, IReadOnlySet<string>? only = null)
    {
        var kinds = only is null ? Kinds : Kinds.Where(k => only.Contains(k.Name)).ToArray();
        if (kinds.Length == 0) throw new ArgumentException($"no such kind; the kinds are {string.Join(", ", KindNames)}");
        int total = kinds.Sum(k => k.Weight), pick = r.Next(total);
        foreach (var k in kinds)
        {
            if (pick < k.Weight) return k.Build(r) with { Kind = k.Name };
            pick -= k.Weight;
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>The probe asked between bursts: greedy, so its answer must never change.</summary>
    public static Scenario Probe() => Post("probe", Endpoint.Chat, new JsonObject
    {
        ["messages"] = Messages(("user", "What is 17+25?")),
        ["temperature"] = 0,
        ["max_tokens"] = 48,
    }, Ok) with { MaxTokens = 48 };

    // ---- well-formed requests ----

    private static string Question(Random r) => $"What is {r.Next(0, 1000)}{Ops[r.Next(Ops.Length)]}{r.Next(0, 100)}?";

    private static JsonArray Messages(params (string Role, string Content)[] turns) =>
        new(turns.Select(t => (JsonNode)new JsonObject { ["role"] = t.Role, ["content"] = t.Content }).ToArray());

    private static JsonObject ChatBody(Random r, bool stream, out int n, out string[] stop, out int maxTokens)
    {
        var turns = new List<(string, string)>();
        if (r.Next(4) == 0) turns.Add(("system", "Answer with the number."));
        if (r.Next(4) == 0)
        {
            turns.Add(("user", Question(r)));
            turns.Add(("assistant", "<think>\nadding up\n</think>\n\n" + r.Next(1000)));
        }
        turns.Add(("user", Question(r)));
        n = r.Next(5) == 0 ? r.Next(2, 5) : 1;
        maxTokens = r.Next(8, 72);
        var body = new JsonObject
        {
            ["messages"] = Messages([.. turns]),
            ["max_tokens"] = maxTokens,
            ["n"] = n,
            ["stream"] = stream,
        };
        switch (r.Next(4))
        {
            case 0: body["temperature"] = 0; break;
            case 1: body["temperature"] = 0.6 + r.NextDouble() * 0.6; body["top_p"] = 0.9; break;
            case 2: body["temperature"] = 1.0; body["top_k"] = 20; body["min_p"] = 0.05; body["seed"] = r.Next(); break;
        }
        stop = [];
        if (r.Next(4) == 0)
        {
            stop = r.Next(2) == 0 ? ["="] : ["\n", "0"];
            body["stop"] = stop.Length == 1 ? stop[0] : new JsonArray(stop.Select(s => (JsonNode)s).ToArray());
        }
        switch (r.Next(8))
        {
            case 0: body["reasoning_budget"] = r.Next(0, 16); break;
            case 1: body["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = false }; break;
            case 2: body["reasoning_budget"] = -1; break;
        }
        if (stream && r.Next(2) == 0) body["stream_options"] = new JsonObject { ["include_usage"] = true };
        if (r.Next(10) == 0) body["user"] = "soak";
        return body;
    }

    private static Scenario Chat(Random r, bool stream)
    {
        var body = ChatBody(r, stream, out int n, out var stop, out int max);
        return Post("", Endpoint.Chat, body, Ok) with
        {
            Choices = n, Stream = stream, Stop = stop, MaxTokens = max,
            IncludeUsage = body["stream_options"] is not null,
        };
    }

    /// <summary>A request with a function tool: its listing in the prompt may not fit a small model's context (then a 400 saying so).</summary>
    private static Scenario Tools(Random r)
    {
        bool stream = r.Next(2) == 0;
        var body = ChatBody(r, stream, out int n, out var stop, out int max);
        body.Remove("reasoning_budget");
        body.Remove("chat_template_kwargs");
        body["tools"] = ToolList();
        return Post("", Endpoint.Chat, body, [200, 400, 429]) with
        {
            Choices = n, Stream = stream, Stop = stop, MaxTokens = max, IncludeUsage = body["stream_options"] is not null,
            ErrorCode = "context_length_exceeded",
        };
    }

    /// <summary>An answer held to a grammar: response_format json_object or json_schema, or a GBNF grammar.</summary>
    private static Scenario Structured(Random r)
    {
        bool stream = r.Next(2) == 0;
        var body = ChatBody(r, stream, out int n, out var stop, out int max);
        switch (r.Next(3))
        {
            case 0: body["response_format"] = new JsonObject { ["type"] = "json_object" }; break;
            case 1:
                body["response_format"] = new JsonObject
                {
                    ["type"] = "json_schema",
                    ["json_schema"] = new JsonObject
                    {
                        ["name"] = "answer",
                        ["schema"] = JsonNode.Parse("""{"type":"object","properties":{"answer":{"type":"integer"}},"required":["answer"],"additionalProperties":false}"""),
                    },
                };
                break;
            default: body["grammar"] = "root ::= [0-9]+"; break;
        }
        return Post("", Endpoint.Chat, body, Ok) with
        {
            Choices = n, Stream = stream, Stop = stop, MaxTokens = max, IncludeUsage = body["stream_options"] is not null,
        };
    }

    /// <summary>A grammar request the server must refuse: a schema it cannot compile, a broken GBNF, both at once, a wrong type.</summary>
    private static Scenario BadStructured(Random r)
    {
        var body = new JsonObject { ["messages"] = Messages(("user", "hi")) };
        switch (r.Next(4))
        {
            case 0: body["grammar"] = "root ::= (\"a\""; break;
            case 1:
                body["response_format"] = new JsonObject { ["type"] = "json_object" };
                body["grammar"] = "root ::= \"a\"";
                break;
            case 2: body["response_format"] = new JsonObject { ["type"] = "yaml" }; break;
            default:
                body["response_format"] = new JsonObject
                {
                    ["type"] = "json_schema",
                    ["json_schema"] = new JsonObject { ["name"] = "x", ["schema"] = JsonNode.Parse("""{"type":"object","dependentSchemas":{"a":{"required":["b"]}}}""") },
                };
                break;
        }
        return Post("", Endpoint.Chat, body, BadRequest);
    }

    private static JsonArray ToolList() => new(new JsonObject
    {
        ["type"] = "function",
        ["function"] = new JsonObject
        {
            ["name"] = "add",
            ["description"] = "Adds two numbers",
            ["parameters"] = JsonNode.Parse("""{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}"""),
        },
    });

    private static Scenario Completions(Random r)
    {
        bool stream = r.Next(2) == 0;
        int prompts = r.Next(4) == 0 ? 2 : 1, n = r.Next(4) == 0 ? 2 : 1, max = r.Next(4, 40);
        JsonNode prompt = r.Next(3) switch
        {
            0 => $"{r.Next(100)}+{r.Next(100)} c0 =",
            1 => new JsonArray(Enumerable.Range(0, r.Next(1, 12)).Select(_ => (JsonNode)r.Next(3, 40)).ToArray()),
            _ => new JsonArray(Enumerable.Range(0, prompts).Select(_ => (JsonNode)$"{r.Next(100)}*{r.Next(10)}").ToArray()),
        };
        if (prompt is JsonArray a && a.Count > 0 && a[0] is JsonValue v && v.TryGetValue<string>(out _)) prompts = a.Count; else prompts = 1;
        var body = new JsonObject { ["prompt"] = prompt, ["max_tokens"] = max, ["n"] = n, ["stream"] = stream };
        if (r.Next(3) == 0) body["temperature"] = 0;
        if (r.Next(5) == 0) body["ignore_eos"] = true;
        string[] stop = r.Next(5) == 0 ? ["\n"] : [];
        if (stop.Length > 0) body["stop"] = stop[0];
        if (stream && r.Next(2) == 0) body["stream_options"] = new JsonObject { ["include_usage"] = true };
        return Post("", Endpoint.Completions, body, Ok) with
        {
            Choices = n * prompts, Stream = stream, Stop = stop, MaxTokens = max, IncludeUsage = body["stream_options"] is not null,
        };
    }

    // ---- clients that misbehave ----

    private static Scenario DropBeforeFirstByte(Random r)
    {
        // n = 1, so that the engine requests the server finished account exactly for the answers nobody read
        var body = ChatBody(r, stream: r.Next(2) == 0, out _, out _, out int max);
        body["n"] = 1;
        var s = Post("", Endpoint.Chat, body, Ok);
        return s with { Request = s.Request with { Mode = ReadMode.CloseAfterSend }, MaxTokens = max };
    }

    private static Scenario DropAfterHeaders(Random r)
    {
        var s = Chat(r, stream: r.Next(2) == 0);
        return s with { Request = s.Request with { Mode = ReadMode.CloseAfterHeaders } };
    }

    private static Scenario DropMidStream(Random r, string field)
    {
        var body = ChatBody(r, stream: true, out int n, out var stop, out _);
        body["max_tokens"] = 64;
        body.Remove("chat_template_kwargs");
        body.Remove("reasoning_budget");
        body.Remove("stop");
        var s = Post("", Endpoint.Chat, body, Ok);
        return s with
        {
            Choices = n, Stream = true, MaxTokens = 64, IncludeUsage = body["stream_options"] is not null,
            Request = s.Request with
            {
                Mode = ReadMode.CloseMidStream,
                StopReading = events => events.Any(e => e.Contains($"\"{field}\":\"", StringComparison.Ordinal)),
            },
        };
    }

    private static Scenario SlowReader(Random r)
    {
        bool chat = r.Next(2) == 0;
        int max = r.Next(64, 200);
        var body = chat
            ? new JsonObject { ["messages"] = Messages(("user", Question(r))), ["max_tokens"] = max, ["stream"] = true, ["ignore_eos"] = true }
            : new JsonObject { ["prompt"] = "12+34 c0 =", ["max_tokens"] = max, ["stream"] = true, ["ignore_eos"] = true };
        var s = Post("", chat ? Endpoint.Chat : Endpoint.Completions, body, Ok);
        return s with { Stream = true, MaxTokens = max, Request = s.Request with { Mode = ReadMode.Slow } };
    }

    private static Scenario SlowSender(Random r)
    {
        var s = Chat(r, stream: r.Next(2) == 0);
        return s with { Request = s.Request with { BodyPieces = 8 } };
    }

    // ---- hostile bodies ----

    private static Scenario TruncatedJson(Random r)
    {
        var full = Encoding.UTF8.GetBytes(ChatBody(r, false, out _, out _, out _).ToJsonString());
        return Bytes(Endpoint.Chat, full.AsSpan(0, r.Next(0, full.Length - 1)).ToArray(), BadRequest);
    }

    /// <summary>The JSON kinds each bound field accepts; a value of another kind must be a 400.</summary>
    private static readonly Dictionary<string, JsonValueKind[]> FieldKinds = new()
    {
        ["model"] = [JsonValueKind.String],
        ["messages"] = [JsonValueKind.Array],
        ["prompt"] = [JsonValueKind.String, JsonValueKind.Array],
        ["max_tokens"] = [JsonValueKind.Number],
        ["max_completion_tokens"] = [JsonValueKind.Number],
        ["temperature"] = [JsonValueKind.Number],
        ["top_p"] = [JsonValueKind.Number],
        ["top_k"] = [JsonValueKind.Number],
        ["min_p"] = [JsonValueKind.Number],
        ["repetition_penalty"] = [JsonValueKind.Number],
        ["presence_penalty"] = [JsonValueKind.Number],
        ["frequency_penalty"] = [JsonValueKind.Number],
        ["seed"] = [JsonValueKind.Number],
        ["stop"] = [JsonValueKind.String, JsonValueKind.Array],
        ["n"] = [JsonValueKind.Number],
        ["stream"] = [JsonValueKind.True, JsonValueKind.False],
        ["stream_options"] = [JsonValueKind.Object],
        ["chat_template_kwargs"] = [JsonValueKind.Object],
        ["reasoning_budget"] = [JsonValueKind.Number],
        ["ignore_eos"] = [JsonValueKind.True, JsonValueKind.False],
        ["tools"] = [JsonValueKind.Array],
        ["tool_choice"] = [JsonValueKind.String, JsonValueKind.Object],
        ["parallel_tool_calls"] = [JsonValueKind.True, JsonValueKind.False],
        ["messages[].role"] = [JsonValueKind.String],
        ["messages[].content"] = [JsonValueKind.String, JsonValueKind.Array],
        ["messages[].tool_calls"] = [JsonValueKind.Array],
        ["messages[].name"] = [JsonValueKind.String],
        ["messages[].tool_call_id"] = [JsonValueKind.String],
        ["messages[].reasoning_content"] = [JsonValueKind.String],
    };

    private static readonly (JsonValueKind Kind, string Json)[] Values =
    [
        (JsonValueKind.String, "\"7\""), (JsonValueKind.String, "\"\""), (JsonValueKind.Number, "7"), (JsonValueKind.Number, "-3.5"),
        (JsonValueKind.True, "true"), (JsonValueKind.False, "false"), (JsonValueKind.Array, "[]"), (JsonValueKind.Array, "[1,\"a\",null]"),
        (JsonValueKind.Object, "{}"), (JsonValueKind.Object, "{\"a\":[{}]}"), (JsonValueKind.Array, "[[[]]]"),
    ];

    /// <summary>Every request field and every message field given a value of a kind it does not take.</summary>
    private static Scenario WrongType(Random r)
    {
        bool chat = r.Next(3) != 0;
        var endpoint = chat ? ApiEndpoints.Chat : ApiEndpoints.Completions;
        var fields = RequestFields.All.Where(f => (f.Endpoints & endpoint) != 0).Select(f => f.Name).ToList();
        if (chat) fields.AddRange(["messages[].role", "messages[].content", "messages[].tool_calls", "messages[].name", "messages[].tool_call_id", "messages[].reasoning_content"]);
        string field = fields[r.Next(fields.Count)];
        var wrong = Values.Where(v => !FieldKinds.TryGetValue(field, out var ok) || !ok.Contains(v.Kind)).ToArray();
        var (_, json) = wrong[r.Next(wrong.Length)];
        var body = chat ? new JsonObject { ["messages"] = Messages(("user", Question(r))), ["max_tokens"] = 16 }
                        : new JsonObject { ["prompt"] = "1+1 c0 =", ["max_tokens"] = 8 };
        if (field.StartsWith("messages[].", StringComparison.Ordinal))
            ((JsonObject)body["messages"]![0]!)[field[11..]] = JsonNode.Parse(json);
        else
            body[field] = JsonNode.Parse(json);
        // a field bound with a known shape must refuse another kind; fields that change nothing may take any value,
        // and one not implemented is refused or not by its value
        var allowed = FieldKinds.ContainsKey(field) ? BadRequest : [200, 400, 429];
        return Post("", chat ? Endpoint.Chat : Endpoint.Completions, body, allowed) with { MaxTokens = chat ? 16 : 8 };
    }

    private static Scenario HugeNumber(Random r)
    {
        string[] fields = ["max_tokens", "n", "seed", "temperature", "top_k", "top_p", "reasoning_budget", "presence_penalty"];
        string[] numbers = ["1e400", "-1e400", "99999999999999999999", "-99999999999999999999", "2147483648", "9223372036854775808",
                            "1e39", "4.9e-325", "1" + new string('0', 5000)];
        string field = fields[r.Next(fields.Length)], number = numbers[r.Next(numbers.Length)];
        string json = $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"{Question(r)}\"}}],\"max_tokens\":16,\"{field}\":{number}}}";
        if (field == "max_tokens") json = json.Replace("\"max_tokens\":16,", "");
        // 4.9e-325 reads as 0, a valid temperature or penalty; 2^31 is a valid seed (a long); every other pair is out of
        // its field's type or range
        bool mayPass = (number == "4.9e-325" && field is "temperature" or "presence_penalty") || (field == "seed" && number == "2147483648");
        return Bytes(Endpoint.Chat, Encoding.UTF8.GetBytes(json), mayPass ? [200, 400, 429] : BadRequest);
    }

    private static Scenario DeepNesting(Random r)
    {
        int depth = r.Next(2) == 0 ? 100_000 : r.Next(60, 70);
        string json = r.Next(3) switch
        {
            0 => new string('[', depth) + new string(']', depth),
            1 => $"{{\"messages\":[{{\"role\":\"user\",\"content\":{new string('[', depth)}{new string(']', depth)}}}]}}",
            _ => $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}],\"max_tokens\":8,\"metadata\":{string.Concat(Enumerable.Repeat("{\"a\":", depth))}1{new string('}', depth)}}}",
        };
        // System.Text.Json reads 64 levels: metadata (no effect) nested within them is accepted
        bool accepted = json.Contains("metadata", StringComparison.Ordinal) && depth + 1 <= 64;
        return Bytes(Endpoint.Chat, Encoding.UTF8.GetBytes(json), accepted ? Ok : BadRequest);
    }

    private static Scenario InvalidUtf8(Random r)
    {
        byte[][] bad = [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf], [0x80, 0x80]];
        var prefix = Encoding.UTF8.GetBytes("{\"messages\":[{\"role\":\"user\",\"content\":\"What is ");
        var suffix = Encoding.UTF8.GetBytes("1+1?\"}],\"max_tokens\":8}");
        return Bytes(Endpoint.Chat, [.. prefix, .. bad[r.Next(bad.Length)], .. suffix], BadRequest);
    }

    private static Scenario BodyOverLimit(Random r)
    {
        int size = (1 << 20) + r.Next(1, 1 << 19);
        string content = new('x', size);
        return Bytes(Endpoint.Chat, Encoding.UTF8.GetBytes($"{{\"messages\":[{{\"role\":\"user\",\"content\":\"{content}\"}}]}}"), TooLarge)
            with { ErrorCode = "request_too_large" };
    }

    private static Scenario UnknownRole(Random r)
    {
        string[] roles = ["wizard", "", "USER", "function", "system ", "\u0000"];
        return Post("", Endpoint.Chat, new JsonObject { ["messages"] = Messages((roles[r.Next(roles.Length)], "hi")), ["max_tokens"] = 8 }, BadRequest);
    }

    private static Scenario EmptyMessages(Random r) => r.Next(4) switch
    {
        0 => Post("", Endpoint.Chat, new JsonObject { ["messages"] = new JsonArray() }, BadRequest),
        1 => Post("", Endpoint.Chat, new JsonObject { ["max_tokens"] = 8 }, BadRequest),
        2 => Post("", Endpoint.Chat, new JsonObject { ["messages"] = Messages(("user", "")), ["max_tokens"] = 8 }, Ok) with { MaxTokens = 8 },
        _ => Post("", Endpoint.Chat, new JsonObject { ["messages"] = JsonNode.Parse("""[{"role":"user"}]""") }, BadRequest),
    };

    private static Scenario NullElements(Random r)
    {
        string[] bodies =
        [
            """{"messages":[null]}""",
            """{"messages":[{"role":"user","content":"hi"},null]}""",
            """{"messages":[{"role":"assistant","content":"x","tool_calls":[null]},{"role":"user","content":"hi"}]}""",
            """{"messages":[{"role":"assistant","content":"x","tool_calls":[{"type":"function","function":null}]},{"role":"user","content":"hi"}]}""",
            """{"messages":[{"role":"user","content":[null]}]}""",
            """{"messages":[{"role":"user","content":"hi"}],"tools":[null]}""",
            """{"messages":[{"role":"user","content":"hi"}],"stop":[null]}""",
            """{"prompt":[null]}""",
            """{"prompt":[[null]]}""",
        ];
        string json = bodies[r.Next(bodies.Length)];
        return Bytes(json.StartsWith("{\"prompt", StringComparison.Ordinal) ? Endpoint.Completions : Endpoint.Chat, Encoding.UTF8.GetBytes(json), BadRequest);
    }

    private static Scenario UnknownField(Random r) =>
        Post("", Endpoint.Chat, new JsonObject { ["messages"] = Messages(("user", "hi")), [$"x_{r.Next(1000)}"] = 1 }, BadRequest);

    private static Scenario NotImplementedField(Random r)
    {
        (string, JsonNode)[] fields =
        [
            ("reasoning_effort", "high"), ("logit_bias", new JsonObject { ["5"] = 10 }),
            ("functions", new JsonArray(new JsonObject { ["name"] = "f" })), ("audio", new JsonObject()),
        ];
        var (name, value) = fields[r.Next(fields.Length)];
        return Post("", Endpoint.Chat, new JsonObject { ["messages"] = Messages(("user", "hi")), [name] = value }, BadRequest);
    }

    private static Scenario WrongModel(Random r) =>
        Post("", Endpoint.Chat, new JsonObject { ["model"] = "gpt-" + r.Next(10), ["messages"] = Messages(("user", "hi")) }, NotFound) with { ErrorCode = "model_not_found" };

    private static Scenario PromptPastContext(Random r) => r.Next(3) switch
    {
        0 => Post("", Endpoint.Chat, new JsonObject { ["messages"] = Messages(("user", string.Concat(Enumerable.Repeat("12+34 ", 400)))) }, BadRequest)
            with { ErrorCode = "context_length_exceeded" },
        1 => Post("", Endpoint.Completions, new JsonObject { ["prompt"] = "1+1", ["max_tokens"] = int.MaxValue }, BadRequest) with { ErrorCode = "context_length_exceeded" },
        // near the body limit: the tokenizer must get through it quickly and refuse it
        _ => Post("", Endpoint.Chat, new JsonObject { ["messages"] = Messages(("user", string.Concat(Enumerable.Repeat("1725 42 ", 120_000)))) }, BadRequest)
            with { ErrorCode = "context_length_exceeded" },
    };

    private static Scenario BadTokenIds(Random r)
    {
        string[] prompts = ["[-1]", "[99999999]", "[[1,2],[-5]]", "[1.5]", "[[]]", "[]", "[2147483648]"];
        return Bytes(Endpoint.Completions, Encoding.UTF8.GetBytes($"{{\"prompt\":{prompts[r.Next(prompts.Length)]},\"max_tokens\":4}}"), BadRequest);
    }

    private static Scenario NotJson(Random r)
    {
        string[] bodies = ["", "hello", "null", "[]", "\"x\"", "42", "{\"messages\":", "{'messages':[]}", "{\"messages\":[]}{}"];
        return Bytes(r.Next(2) == 0 ? Endpoint.Chat : Endpoint.Completions, Encoding.UTF8.GetBytes(bodies[r.Next(bodies.Length)]), BadRequest);
    }

    private static Scenario UnknownRoute(Random r)
    {
        string[] paths = ["/v1/chat", "/v1/embeddings", "/v2/chat/completions", "/v1/chat/completions/x"];
        return new Scenario("", Endpoint.Other, new RawRequest("POST", paths[r.Next(paths.Length)], "{}"u8.ToArray()), NotFound);
    }

    private static Scenario BrokenHttp(Random r)
    {
        string[] raws =
        [
            "GARBAGE\r\n\r\n",
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        ];
        return new Scenario("", Endpoint.Other, new RawRequest("POST", "/", []) { Raw = Encoding.ASCII.GetBytes(raws[r.Next(raws.Length)]) }, BadRequest)
            { HttpLayer = true };
    }

    /// <summary>Well-formed headers, then a chunked body that breaks off or is not chunked at all: the application's 400.</summary>
    private static Scenario BadChunkedBody(Random r)
    {
        string[] bodies = ["zz\r\n", "5\r\n{\"me\r\n", "ffffffffff\r\n{}\r\n0\r\n\r\n", "2\r\n{}\r\n1\r\n"];
        string raw = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + bodies[r.Next(bodies.Length)];
        // a body that stops coming waits for Kestrel's minimum data rate (5 s grace): 408
        return new Scenario("", Endpoint.Chat, new RawRequest("POST", "/v1/chat/completions", []) { Raw = Encoding.ASCII.GetBytes(raw) }, [400, 408]);
    }

    // ---- helpers ----

    private static Scenario Post(string kind, Endpoint endpoint, JsonNode body, int[] allowed) =>
        Bytes(endpoint, Encoding.UTF8.GetBytes(body.ToJsonString()), allowed) with { Kind = kind };

    private static Scenario Bytes(Endpoint endpoint, byte[] body, int[] allowed) =>
        new("", endpoint, new RawRequest("POST", endpoint == Endpoint.Completions ? "/v1/completions" : "/v1/chat/completions", body), allowed);

    public static string PathOf(Endpoint e) => e == Endpoint.Completions ? "/v1/completions" : "/v1/chat/completions";
}
