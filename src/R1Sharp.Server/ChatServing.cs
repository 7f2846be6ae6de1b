// POST /v1/chat/completions: messages → chat template → engine requests; the output is split into reasoning
// (message.reasoning_content, also as `reasoning`) and the answer (message.content), streamed or whole.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Grammar;
using R1Sharp.Server.Protocol;
using R1Sharp.Tokenization;

namespace R1Sharp.Server;

internal sealed class ChatServing(ServingContext s)
{
    private readonly int[] _thinkClose = s.Model.Tokenizer.Encode("\n" + R1ChatTemplate.ThinkClose + "\n\n");

    public async Task HandleAsync(HttpContext ctx)
    {
        long started = Stopwatch.GetTimestamp();
        var req = await Serving.ReadBodyAsync(ctx, ProtocolJson.Wire.ChatCompletionRequest, ApiEndpoints.Chat, s.Options.MaxBodyBytes);
        Serving.CheckModel(s, req.Model);
        var messages = ToMessages(req.Messages);
        int n = Serving.CheckChoices(req.N);
        bool thinking = Thinking(req);
        var (tools, toolChoice) = Tools(req);
        var tok = s.Model.Tokenizer;
        string text = ChatTemplates.Render(s.Template, messages, tok.BosText, addGenerationPrompt: true, thinking,
            toolChoice.ToolsOn ? tools : null);
        int[] prompt = tok.Encode(text);
        string maxParam = req.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens";
        int maxTokens = Serving.ResolveMaxTokens(s, req.MaxCompletionTokens ?? req.MaxTokens, prompt.Length, "messages", maxParam);
        bool opensThink = ChatTemplates.PromptOpensThink(s.Template, thinking);
        if (req.ReasoningBudget is int rb && rb < -1) throw ApiException.Invalid($"reasoning_budget must be -1 (unlimited), 0 (no thinking) or positive (got {rb})", "reasoning_budget");
        int budget = req.ReasoningBudget is int b && b > 0 ? b : -1;

        var answer = Answer(req, tools, toolChoice, opensThink, s.Model.Tokenizer, s.Template);
        int? logProbs = LogProbsFormat.ChatRequest(req);

        var choices = new Choice[n];
        var jobs = new GenerationJob[n];
        var steer = new ReasoningSteer(opensThink, budget, _thinkClose);
        for (int i = 0; i < n; i++)
        {
            choices[i] = new Choice(new AssistantOutput(opensThink, toolChoice.ToolsOn && tools.Count > 0 ? ToolCallParser.SyntaxOf(s.Template) : null,
                req.ParallelToolCalls ?? true)) { LogProbs = logProbs is null ? null : new LogProbsSplitter(tok, opensThink) };
            jobs[i] = new GenerationJob(Serving.ChoiceRequest(req, prompt, maxTokens, i) with { LogProbs = logProbs }, steer, answer);
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        try
        {
            var streams = await Serving.SubmitAllAsync(s, jobs, cts);
            string id = Serving.NewId("chatcmpl-");
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var clock = new TokenClock(s.Metrics, started);
            if (req.Stream == true)
                await StreamAsync(ctx, id, created, choices, streams, req.StreamOptions?.IncludeUsage == true, prompt.Length, clock, cts.Token);
            else
                await CompleteAsync(ctx, id, created, choices, streams, prompt.Length, clock, cts.Token);
        }
        finally
        {
            cts.Cancel(); // a client gone mid-stream: free the slots now
        }
    }

    internal static bool Thinking(ChatCompletionRequest req)
    {
        if (req.ReasoningBudget == 0) return false;
        if (req.ChatTemplateKwargs is { } kw)
            foreach (string key in new[] { "enable_thinking", "thinking" })
                if (kw.TryGetValue(key, out var v))
                {
                    if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                        throw ApiException.Invalid($"chat_template_kwargs.{key} must be true or false", "chat_template_kwargs");
                    return v.GetBoolean();
                }
        return true;
    }

    /// <summary>The request's tools and tool_choice (OpenAI's default: auto with tools, none without).</summary>
    internal static (List<ToolDefinition> Tools, ToolChoice Choice) Tools(ChatCompletionRequest req)
    {
        var tools = new List<ToolDefinition>();
        for (int i = 0; i < (req.Tools?.Count ?? 0); i++)
        {
            try { tools.Add(ToolDefinition.FromOpenAi(req.Tools![i])); }
            catch (ArgumentException e) { throw ApiException.Invalid($"tools[{i}]: {e.Message}", $"tools[{i}]"); }
        }
        if (tools.Select(t => t.Name).Distinct().Count() != tools.Count) throw ApiException.Invalid("tool names must be unique", "tools");
        ToolChoice choice = tools.Count > 0 ? ToolChoice.Auto : ToolChoice.None;
        if (req.ToolChoice is { ValueKind: not JsonValueKind.Null } tc)
        {
            choice = tc.ValueKind switch
            {
                JsonValueKind.String when tc.GetString() == "none" => ToolChoice.None,
                JsonValueKind.String when tc.GetString() == "auto" => ToolChoice.Auto,
                JsonValueKind.String when tc.GetString() == "required" => ToolChoice.Required,
                JsonValueKind.Object when tc.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object
                    && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String => new ToolChoice(ToolChoiceMode.Function, n.GetString()),
                _ => throw ApiException.Invalid("tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}", "tool_choice"),
            };
            if (choice.Mode != ToolChoiceMode.None && tools.Count == 0)
                throw ApiException.Invalid("tool_choice needs tools", "tool_choice");
            if (choice.Mode == ToolChoiceMode.Function && tools.All(t => t.Name != choice.FunctionName))
                throw ApiException.Invalid($"tool_choice names '{choice.FunctionName}', which is not among the tools", "tool_choice");
        }
        return (tools, choice);
    }

    /// <summary>
    /// The format the answer must follow (response_format, grammar, forced or strict tool calls), or null for none;
    /// checked here, by compiling it over this node's vocabulary (cached), so that a format that cannot be compiled is
    /// a 400 wherever the job then runs.
    /// </summary>
    internal static AnswerSpec? Answer(ChatCompletionRequest req, List<ToolDefinition> tools, ToolChoice choice, bool opensThink,
        BpeTokenizer tokenizer, ChatTemplateKind template)
    {
        AnswerFormat? format = null;
        string param = "response_format";
        if (req.ResponseFormat is { ValueKind: JsonValueKind.Object } rf)
            format = ResponseFormat(rf);
        else if (req.ResponseFormat is { ValueKind: not JsonValueKind.Null })
            throw ApiException.Invalid("response_format must be an object", "response_format");
        if (req.Grammar is { } gbnf)
        {
            if (format is not null) throw ApiException.Invalid("give response_format or grammar, not both", "grammar");
            format = new AnswerFormat(AnswerFormatKind.Gbnf, gbnf);
            param = "grammar";
        }
        if (choice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function) param = format is null ? "tools" : "tool_choice";
        var spec = new AnswerSpec(template, opensThink, tools, choice, req.ParallelToolCalls ?? true, format);
        try
        {
            return spec.Plan(tokenizer) is null ? null : spec;
        }
        catch (UnsupportedSchemaException e)
        {
            throw ApiException.Invalid($"{e.Message} (unsupported JSON Schema keyword '{e.Keyword}')", param);
        }
        catch (GrammarException e)
        {
            throw ApiException.Invalid(e.Message, param);
        }
        catch (ArgumentException e)
        {
            throw ApiException.Invalid(e.Message, param);
        }
    }

    private static AnswerFormat? ResponseFormat(JsonElement rf)
    {
        string? type = rf.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        switch (type)
        {
            case "text": return null;
            case "json_object": return AnswerFormat.JsonObject;
            case "json_schema":
                if (!rf.TryGetProperty("json_schema", out var js) || js.ValueKind != JsonValueKind.Object)
                    throw ApiException.Invalid("response_format.json_schema must be an object with a schema", "response_format");
                if (!js.TryGetProperty("schema", out var schema) || schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                    throw ApiException.Invalid("response_format.json_schema.schema must be a JSON Schema object", "response_format");
                bool strict = js.TryGetProperty("strict", out var st) && st.ValueKind == JsonValueKind.True;
                return new AnswerFormat(AnswerFormatKind.JsonSchema, schema.GetRawText(), strict);
            default:
                throw ApiException.Invalid("response_format.type must be \"text\", \"json_object\" or \"json_schema\"", "response_format");
        }
    }

    internal static List<ChatMessage> ToMessages(List<ChatMessageDto>? dtos)
    {
        if (dtos is null || dtos.Count == 0) throw ApiException.Invalid("'messages' must be a non-empty array", "messages");
        var list = new List<ChatMessage>(dtos.Count);
        for (int i = 0; i < dtos.Count; i++)
        {
            var m = dtos[i] ?? throw ApiException.Invalid($"messages[{i}] must be an object (got null)", $"messages[{i}]");
            string role = m.Role switch
            {
                "system" or "developer" => "system",
                "user" or "assistant" or "tool" => m.Role,
                _ => throw ApiException.Invalid($"messages[{i}].role must be system, developer, user, assistant or tool (got '{m.Role}')", $"messages[{i}].role"),
            };
            if (m.Content is null && role != "assistant")
                throw ApiException.Invalid($"messages[{i}].content is required for role '{role}'", $"messages[{i}].content");
            List<ToolCall>? calls = m.ToolCalls?.Select((c, j) => c?.Function?.Name is { Length: > 0 } name
                    ? new ToolCall(c.Type ?? "function", name, c.Function.Arguments ?? "")
                    : throw ApiException.Invalid($"messages[{i}].tool_calls[{j}].function.name is required", $"messages[{i}].tool_calls[{j}]"))
                .ToList();
            list.Add(new ChatMessage(role, m.Content, calls is { Count: > 0 } ? calls : null));
        }
        return list;
    }

    private async Task CompleteAsync(HttpContext ctx, string id, long created, Choice[] choices, IAsyncEnumerable<JobChunk>[] streams,
        int promptTokens, TokenClock clock, CancellationToken ct)
    {
        await foreach (var (i, chunk) in Serving.Merge(streams, ct))
        {
            if (i == 0) clock.Tokens(chunk.Chunk.Tokens);
            choices[i].Take(chunk);
        }
        var response = new ChatCompletionResponse
        {
            Id = id,
            Created = created,
            Model = s.ModelId,
            Choices = choices.Select((c, i) => new ChatChoice
            {
                Index = i,
                Message = new ResponseMessage
                {
                    // with calls and nothing else to say, content is null as OpenAI sends it
                    Content = c.CallIds.Count > 0 && string.IsNullOrWhiteSpace(c.Output.Content) ? null : c.Output.Content,
                    ReasoningContent = c.Output.Reasoning.Length > 0 ? c.Output.Reasoning : null,
                    Reasoning = c.Output.Reasoning.Length > 0 ? c.Output.Reasoning : null,
                    ToolCalls = c.CallIds.Count == 0 ? null : c.Output.Calls.Select((call, k) => new ToolCallDto
                    {
                        Id = c.CallIds[k], Type = "function", Function = new FunctionCallDto { Name = call.Name, Arguments = call.Arguments },
                    }).ToList(),
                },
                FinishReason = c.FinishReason,
                Logprobs = c.LogProbs?.Total(),
            }).ToList(),
            Usage = MakeUsage(choices, promptTokens),
        };
        await Serving.WriteJsonAsync(ctx, response, ProtocolJson.Wire.ChatCompletionResponse);
    }

    private async Task StreamAsync(HttpContext ctx, string id, long created, Choice[] choices, IAsyncEnumerable<JobChunk>[] streams,
        bool includeUsage, int promptTokens, TokenClock clock, CancellationToken ct)
    {
        var info = ProtocolJson.Wire.ChatCompletionChunk;
        ChatCompletionChunk Chunk(int index, Delta delta, string? finish = null, ChatLogprobs? logprobs = null) =>
            new() { Id = id, Created = created, Model = s.ModelId, Choices = [new ChunkChoice { Index = index, Delta = delta, FinishReason = finish, Logprobs = logprobs }] };

        Serving.StartEventStream(ctx);
        for (int i = 0; i < choices.Length; i++)
            await Serving.WriteEventAsync(ctx, Chunk(i, new Delta { Role = "assistant" }), info);
        await foreach (var (i, job) in Serving.Merge(streams, ct))
        {
            var chunk = job.Chunk;
            if (i == 0) clock.Tokens(chunk.Tokens);
            var d = choices[i].Take(job);
            // each token's logprobs go with the text of its side; tokens whose text is held back go in a chunk of their own
            var (lpReasoning, lpContent) = choices[i].ChunkLogProbs;
            ChatLogprobs? Lp(List<TokenLogprob> reasoning, List<TokenLogprob> content) =>
                reasoning.Count + content.Count == 0 ? null : new ChatLogprobs { Content = content, ReasoningContent = reasoning.Count > 0 ? reasoning : null };
            // reasoning first, then the answer, then calls, as DeepSeek streams them
            if (d.Reasoning.Length > 0)
            {
                await Serving.WriteEventAsync(ctx, Chunk(i, new Delta { ReasoningContent = d.Reasoning, Reasoning = d.Reasoning }, logprobs: Lp(lpReasoning, [])), info);
                lpReasoning = [];
            }
            if (d.Content.Length > 0)
            {
                await Serving.WriteEventAsync(ctx, Chunk(i, new Delta { Content = d.Content }, logprobs: Lp(lpReasoning, lpContent)), info);
                lpReasoning = lpContent = [];
            }
            if (Lp(lpReasoning, lpContent) is { } rest) await Serving.WriteEventAsync(ctx, Chunk(i, new Delta(), logprobs: rest), info);
            foreach (var e in d.ToolEvents)
            {
                var call = e switch
                {
                    // id, type and name first, then the arguments in fragments, as OpenAI streams a call
                    CallStartEvent st => new ToolCallDelta { Index = st.Index, Id = choices[i].CallIds[st.Index], Type = "function", Function = new FunctionCallDto { Name = st.Name, Arguments = "" } },
                    CallArgumentsEvent a => new ToolCallDelta { Index = a.Index, Function = new FunctionCallDto { Arguments = a.Fragment } },
                    _ => null,
                };
                if (call is not null) await Serving.WriteEventAsync(ctx, Chunk(i, new Delta { ToolCalls = [call] }), info);
            }
            if (chunk.Finish is not null)
                await Serving.WriteEventAsync(ctx, Chunk(i, new Delta(), choices[i].FinishReason), info);
        }
        if (includeUsage)
            await Serving.WriteEventAsync(ctx, new ChatCompletionChunk { Id = id, Created = created, Model = s.ModelId, Choices = [], Usage = MakeUsage(choices, promptTokens) }, info);
        await Serving.WriteDoneAsync(ctx);
    }

    private static Usage MakeUsage(Choice[] choices, int promptTokens)
    {
        int completion = choices.Sum(c => c.Usage?.CompletionTokens ?? 0);
        return new Usage
        {
            PromptTokens = promptTokens,
            CompletionTokens = completion,
            TotalTokens = promptTokens + completion,
            PromptTokensDetails = new PromptTokensDetails(choices[0].Usage?.CachedPromptTokens ?? 0),
            CompletionTokensDetails = new CompletionTokensDetails(choices.Sum(c => c.ReasoningTokens)),
        };
    }

    /// <summary>One choice as the client sees it: its reasoning, answer and calls so far.</summary>
    private sealed class Choice(AssistantOutput output)
    {
        public readonly AssistantOutput Output = output;
        /// <summary>The ids of the calls started so far, one per call.</summary>
        public readonly List<string> CallIds = [];
        public FinishReason? Finish;
        public GenerationUsage? Usage;
        /// <summary>Reasoning tokens, as the engine's node counted them (known at the end).</summary>
        public int ReasoningTokens;
        /// <summary>The tokens' logprobs when the request asks for them.</summary>
        public LogProbsSplitter? LogProbs { get; init; }
        /// <summary>The last chunk's tokens, of the reasoning and of the answer (empty without logprobs).</summary>
        public (List<TokenLogprob> Reasoning, List<TokenLogprob> Content) ChunkLogProbs = ([], []);

        /// <summary>"tool_calls" when the answer ended with calls, else the engine's reason.</summary>
        public string FinishReason => Finish is null or R1Sharp.Engine.FinishReason.Stop && CallIds.Count > 0 && !Output.CallTruncated
            ? "tool_calls" : Serving.FinishReasonName(Finish ?? R1Sharp.Engine.FinishReason.Stop);

        public OutputDelta Take(JobChunk job)
        {
            var chunk = job.Chunk;
            var d = Output.Push(chunk.Text);
            if (LogProbs is not null) ChunkLogProbs = LogProbs.Take(chunk.LogProbs);
            if (chunk.Finish is FinishReason f)
            {
                var tail = Output.Finish();
                d = new OutputDelta(d.Reasoning + tail.Reasoning, d.Content + tail.Content, [.. d.ToolEvents, .. tail.ToolEvents]);
                Finish = f;
                Usage = chunk.Usage;
                ReasoningTokens = job.ReasoningTokens;
            }
            foreach (var e in d.ToolEvents) if (e is CallStartEvent) CallIds.Add(Serving.NewId("call_"));
            return d;
        }
    }
}
