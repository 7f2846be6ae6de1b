// A Microsoft.Extensions.AI IChatClient over the engine, in process: what the HTTP server does for a remote client,
// without HTTP. The reasoning comes back as TextReasoningContent and the answer as TextContent, streamed (reasoning
// first) or whole. It runs on a Scheduler (continuous batching) rather than on one session behind a lock: concurrent
// calls decode together in shared batches instead of queueing behind each other, a conversation's next turn reuses
// the cached prefix of its slot, and cancellation, stop strings and the thinking budget are the engine's own.
// Options map as the server maps the OpenAI fields: Temperature, TopP, TopK, MaxOutputTokens, Seed, StopSequences,
// presence/frequency penalties; AdditionalProperties "thinking" (or "enable_thinking") true/false and
// "reasoning_budget" N switch thinking and cap it, and Reasoning.Effort None turns it off too. Tools come back as
// FunctionCallContent; ToolMode RequireAny/RequireSpecific and ResponseFormat (Json, ForJsonSchema) hold the answer
// to a grammar after the free reasoning, as the server's tool_choice and response_format do, so
// UseFunctionInvocation() and GetResponseAsync<T>() work.
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using R1Sharp.Engine;
using R1Sharp.Grammar;
using R1Sharp.Sampling;
using AI = Microsoft.Extensions.AI;

namespace R1Sharp.Chat;

public sealed record R1ChatClientOptions
{
    /// <summary>Conversations decoded together (KV-cache slots); more wait in the scheduler's queue.</summary>
    public int Slots { get; init; } = 2;
    /// <summary>Tokens of context per conversation; 0: the model's, at most 4096.</summary>
    public int ContextSize { get; init; }
    /// <summary>Calls waiting for a slot beyond which a call fails with QueueFullException.</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>The chat format; null detects it from the model (as `chat` and `serve` do).</summary>
    public ChatTemplateKind? Template { get; init; }
    /// <summary>The id reported in responses and metadata; null: "r1sharp".</summary>
    public string? ModelId { get; init; }
    /// <summary>
    /// Speculative decoding for every conversation (e.g. a <see cref="DraftModelSource"/>, <see cref="NgramSource"/>
    /// or <see cref="MtpSource"/>; the caller keeps owning the source); null for none.
    /// </summary>
    public SpeculationOptions? Speculation { get; init; }
}

public sealed class R1ChatClient : IChatClient
{
    /// <summary>AdditionalProperties key: true/false switches thinking (also "enable_thinking").</summary>
    public const string ThinkingKey = "thinking";
    /// <summary>AdditionalProperties key: most reasoning tokens, then &lt;/think&gt; is forced; -1 unlimited, 0 thinking off.</summary>
    public const string ReasoningBudgetKey = "reasoning_budget";
    /// <summary>AdditionalProperties key (Microsoft.Extensions.AI.OpenAI's name): false takes a response schema as written, additionalProperties defaulting to true.</summary>
    public const string StrictJsonSchemaKey = "strictJsonSchema";

    private readonly LoadedModel _model;
    private readonly bool _ownsModel;
    private readonly ChatTemplateKind _template;
    private readonly int[] _thinkClose;
    private readonly ChatClientMetadata _metadata;

    /// <summary>A client over <paramref name="model"/>, which the caller keeps owning (dispose the client first).</summary>
    public R1ChatClient(LoadedModel model, R1ChatClientOptions? options = null) : this(model, options ?? new(), ownsModel: false) { }

    private R1ChatClient(LoadedModel model, R1ChatClientOptions options, bool ownsModel)
    {
        _model = model;
        _ownsModel = ownsModel;
        var tok = model.Tokenizer;
        _template = options.Template ?? ChatTemplates.Detect(tok.Data.ChatTemplate, t => tok.TokenToId(t) is not null);
        _thinkClose = tok.Encode("\n" + R1ChatTemplate.ThinkClose + "\n\n");
        int ctx = options.ContextSize > 0 ? options.ContextSize : Math.Min(model.Config.ContextLength, 4096);
        if (ctx > model.Config.ContextLength)
            throw new ArgumentException($"a context of {ctx} tokens is past the model's context length {model.Config.ContextLength}");
        Scheduler = new Scheduler(model.Model, tok, model.IsEndOfGeneration,
            new SchedulerOptions { Slots = options.Slots, ContextSize = ctx, MaxQueue = options.MaxQueue, Speculation = options.Speculation });
        _metadata = new ChatClientMetadata("r1sharp", defaultModelId: options.ModelId ?? "r1sharp");
    }

    /// <summary>Loads the GGUF at <paramref name="path"/>; the client owns the model and disposes it.</summary>
    public static R1ChatClient Load(string path, R1ChatClientOptions? options = null, int threads = 0)
    {
        var model = LoadedModel.Load(path, threads);
        try
        {
            return new R1ChatClient(model, options ?? new(), ownsModel: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public Scheduler Scheduler { get; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AI.ChatMessage> messages, ChatOptions? options = null,
                                                     CancellationToken cancellationToken = default)
    {
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        var calls = new List<FunctionCallContent>();
        var response = new ChatResponse();
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            response.ResponseId ??= update.ResponseId;
            response.CreatedAt ??= update.CreatedAt;
            response.ModelId ??= update.ModelId;
            response.FinishReason = update.FinishReason ?? response.FinishReason;
            foreach (var c in update.Contents)
            {
                switch (c)
                {
                    case TextReasoningContent r: reasoning.Append(r.Text); break;
                    case TextContent t: content.Append(t.Text); break;
                    case FunctionCallContent f: calls.Add(f); break;
                    case UsageContent u: response.Usage = u.Details; break;
                }
            }
        }
        var message = new AI.ChatMessage(ChatRole.Assistant, []) { MessageId = response.ResponseId };
        if (reasoning.Length > 0) message.Contents.Add(new TextReasoningContent(reasoning.ToString()));
        if (calls.Count == 0 || !string.IsNullOrWhiteSpace(content.ToString())) message.Contents.Add(new TextContent(content.ToString()));
        foreach (var f in calls) message.Contents.Add(f);
        response.Messages = [message];
        return response;
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AI.ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var (request, tracker, output) = Prepare(messages, options);
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
        var created = DateTimeOffset.UtcNow;
        string modelId = options?.ModelId ?? _metadata.DefaultModelId!;
        int callsReturned = 0;

        ChatResponseUpdate Update(AIContent c) => new(ChatRole.Assistant, [c])
        {
            ResponseId = id, MessageId = id, CreatedAt = created, ModelId = modelId,
        };

        await foreach (var chunk in Scheduler.Submit(request, cancellationToken).WithCancellation(cancellationToken))
        {
            var d = output.Push(chunk.Text);
            if (chunk.Finish is not null)
            {
                var tail = output.Finish();
                d = new OutputDelta(d.Reasoning + tail.Reasoning, d.Content + tail.Content, []);
            }
            if (d.Reasoning.Length > 0) yield return Update(new TextReasoningContent(d.Reasoning));
            if (d.Content.Length > 0) yield return Update(new TextContent(d.Content));
            // a call is handed out whole, once its arguments are complete (the parser lists it then)
            var calls = output.Calls;
            for (; callsReturned < calls.Count; callsReturned++)
                yield return Update(FunctionCallContent.CreateFromParsedArguments(calls[callsReturned].Arguments,
                    "call_" + Guid.NewGuid().ToString("N")[..24], calls[callsReturned].Name, ParseArguments));
            if (chunk.Finish is FinishReason f)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var u = chunk.Usage!;
                var last = Update(new UsageContent(new UsageDetails
                {
                    InputTokenCount = u.PromptTokens,
                    OutputTokenCount = u.CompletionTokens,
                    TotalTokenCount = u.PromptTokens + u.CompletionTokens,
                    ReasoningTokenCount = tracker.ReasoningTokens,
                    CachedInputTokenCount = u.CachedPromptTokens,
                }));
                last.FinishReason = callsReturned > 0 && f == FinishReason.Stop && !output.CallTruncated ? ChatFinishReason.ToolCalls
                    : f == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length;
                yield return last;
            }
        }
    }

    private static IDictionary<string, object?>? ParseArguments(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, object?>>(json, AIJsonUtilities.DefaultOptions);

    /// <summary>The engine request of a call: the rendered prompt, sampling, limits and the reasoning steer.</summary>
    private (EngineRequest Request, ReasoningTracker Tracker, AssistantOutput Output) Prepare(IEnumerable<AI.ChatMessage> messages, ChatOptions? options)
    {
        var list = ToMessages(messages, options?.Instructions);
        if (list.Count == 0) throw new ArgumentException("no messages to answer");
        var (thinking, budget) = Thinking(options);
        var (tools, choice) = Tools(options);
        var format = Format(options?.ResponseFormat, options?.AdditionalProperties);
        var tok = _model.Tokenizer;
        int[] prompt = tok.Encode(ChatTemplates.Render(_template, list, tok.BosText, addGenerationPrompt: true, thinking,
            choice.ToolsOn ? tools : null));
        int ctx = Scheduler.ContextSize;
        if (prompt.Length >= ctx)
            throw new ArgumentException($"the conversation ({prompt.Length} tokens) does not fit the context of {ctx} tokens");
        int maxTokens = options?.MaxOutputTokens ?? ctx - prompt.Length;
        if (maxTokens < 1) throw new ArgumentException($"MaxOutputTokens must be at least 1 (got {maxTokens})");
        bool opensThink = ChatTemplates.PromptOpensThink(_template, thinking);
        var tracker = new ReasoningTracker(opensThink, budget > 0 ? new ThinkingBudget(budget.Value, _thinkClose) : null);
        bool parallel = options?.AllowMultipleToolCalls ?? true;
        Func<GrammarConstraint>? constraint;
        try
        {
            constraint = AnswerFormat.Plan(GrammarCache.For(tok), _template, opensThink, tools, choice, parallel, format);
        }
        catch (GrammarException e)
        {
            throw new ArgumentException(e.Message, e);
        }
        var sampling = new SamplingParams
        {
            // the R1 model card's advice where the caller says nothing
            Temperature = options?.Temperature ?? 0.6f,
            TopP = options?.TopP ?? 0.95f,
            TopK = Math.Max(0, options?.TopK ?? 0),
            PresencePenalty = options?.PresencePenalty ?? 0,
            FrequencyPenalty = options?.FrequencyPenalty ?? 0,
            RepeatLastN = -1,
            Seed = options?.Seed is long s ? unchecked((ulong)s) : (ulong)Random.Shared.NextInt64(),
        };
        sampling.Validate();
        var request = new EngineRequest
        {
            Prompt = prompt,
            MaxTokens = maxTokens,
            Sampling = sampling,
            StopStrings = options?.StopSequences is { } stops ? [.. stops] : [],
            Steer = tracker.Steer,
            Constraint = constraint?.Invoke(),
        };
        var output = new AssistantOutput(opensThink, choice.ToolsOn && tools.Count > 0 ? ToolCallParser.SyntaxOf(_template) : null, parallel);
        return (request, tracker, output);
    }

    /// <summary>The function tools of the options and how they may be used (ChatOptions.ToolMode; Auto by default).</summary>
    private static (List<ToolDefinition> Tools, ToolChoice Choice) Tools(ChatOptions? options)
    {
        var tools = new List<ToolDefinition>();
        foreach (var tool in options?.Tools ?? [])
        {
            if (tool is not AIFunctionDeclaration f) throw new NotSupportedException($"the tool '{tool.Name}' is not a function; only functions can be called");
            var function = new Dictionary<string, object?> { ["name"] = f.Name };
            if (!string.IsNullOrEmpty(f.Description)) function["description"] = f.Description;
            function["parameters"] = f.JsonSchema;
            tools.Add(ToolDefinition.FromFunction(JsonSerializer.SerializeToElement(function, AIJsonUtilities.DefaultOptions)));
        }
        var choice = options?.ToolMode switch
        {
            NoneChatToolMode => ToolChoice.None,
            RequiredChatToolMode r => new ToolChoice(r.RequiredFunctionName is null ? ToolChoiceMode.Required : ToolChoiceMode.Function, r.RequiredFunctionName),
            _ => tools.Count > 0 ? ToolChoice.Auto : ToolChoice.None,
        };
        if (choice.Mode != ToolChoiceMode.None && choice.Mode != ToolChoiceMode.Auto && tools.Count == 0)
            throw new ArgumentException("ChatToolMode.RequireAny or RequireSpecific needs tools");
        if (choice.Mode == ToolChoiceMode.Function && tools.All(t => t.Name != choice.FunctionName))
            throw new ArgumentException($"ChatToolMode.RequireSpecific names '{choice.FunctionName}', which is not among the tools");
        return (tools, choice);
    }

    /// <summary>
    /// The answer's format from ChatOptions.ResponseFormat: null for text, any JSON object, or JSON following a schema.
    /// A schema is taken as OpenAI's strict (additionalProperties false where the schema does not say) unless
    /// AdditionalProperties["strictJsonSchema"] is false: GetResponseAsync&lt;T&gt; derives the schema from T, where members
    /// the type lacks have no place.
    /// </summary>
    private static AnswerFormat? Format(ChatResponseFormat? format, AdditionalPropertiesDictionary? props)
    {
        bool strict = true;
        if (props is not null && props.TryGetValue(StrictJsonSchemaKey, out object? v))
            strict = AsBool(v) ?? throw new ArgumentException($"AdditionalProperties[\"{StrictJsonSchemaKey}\"] must be true or false");
        return format switch
        {
            null or ChatResponseFormatText => null,
            ChatResponseFormatJson { Schema: null } => AnswerFormat.JsonObject,
            ChatResponseFormatJson j => new AnswerFormat(AnswerFormatKind.JsonSchema, j.Schema.Value.GetRawText(), strict),
            _ => throw new NotSupportedException($"the response format {format.GetType().Name} is not supported"),
        };
    }

    /// <summary>Thinking on or off, and the reasoning budget (null: unlimited), from the options.</summary>
    private static (bool Thinking, int? Budget) Thinking(ChatOptions? options)
    {
        bool thinking = options?.Reasoning?.Effort != ReasoningEffort.None;
        int? budget = null;
        if (options?.AdditionalProperties is { } props)
        {
            foreach (string key in new[] { ThinkingKey, "enable_thinking" })
                if (props.TryGetValue(key, out object? v))
                    thinking = AsBool(v) ?? throw new ArgumentException($"AdditionalProperties[\"{key}\"] must be true or false");
            if (props.TryGetValue(ReasoningBudgetKey, out object? b))
            {
                int n = AsInt(b) ?? throw new ArgumentException($"AdditionalProperties[\"{ReasoningBudgetKey}\"] must be an integer");
                if (n < -1) throw new ArgumentException($"{ReasoningBudgetKey} must be -1 (unlimited), 0 (no thinking) or positive (got {n})");
                if (n == 0) thinking = false;
                else if (n > 0) budget = n;
            }
        }
        return (thinking, thinking ? budget : null);
    }

    private static bool? AsBool(object? v) => v switch
    {
        bool b => b,
        string s when bool.TryParse(s, out bool b) => b,
        JsonElement { ValueKind: JsonValueKind.True } => true,
        JsonElement { ValueKind: JsonValueKind.False } => false,
        _ => null,
    };

    private static int? AsInt(object? v) => v switch
    {
        int i => i,
        long l and >= int.MinValue and <= int.MaxValue => (int)l,
        string s when int.TryParse(s, out int i) => i,
        JsonElement { ValueKind: JsonValueKind.Number } e when e.TryGetInt32(out int i) => i,
        _ => null,
    };

    /// <summary>M.E.AI messages as the chat templates see them: text parts joined; reasoning parts dropped (the R1
    /// template drops earlier reasoning anyway); function calls and results as tool calls and tool turns.</summary>
    private static List<ChatMessage> ToMessages(IEnumerable<AI.ChatMessage> messages, string? instructions)
    {
        var list = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(instructions)) list.Add(ChatMessage.System(instructions));
        foreach (var m in messages)
        {
            if (m.Role == ChatRole.Tool)
            {
                foreach (var r in m.Contents.OfType<FunctionResultContent>())
                    list.Add(ChatMessage.Tool(r.Result switch { null => "", string s => s, JsonElement e => e.GetRawText(), var o => JsonSerializer.Serialize(o, AIJsonUtilities.DefaultOptions) }));
                continue;
            }
            string role = m.Role == ChatRole.System ? "system" : m.Role == ChatRole.Assistant ? "assistant" : "user";
            var calls = m.Contents.OfType<FunctionCallContent>()
                .Select(c => new ToolCall("function", c.Name, JsonSerializer.Serialize(c.Arguments, AIJsonUtilities.DefaultOptions)))
                .ToList();
            list.Add(new ChatMessage(role, m.Text, calls.Count > 0 ? calls : null));
        }
        return list;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(Scheduler)) return Scheduler;
        if (serviceType == typeof(LoadedModel)) return _model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
        Scheduler.Dispose();
        if (_ownsModel) _model.Dispose();
    }
}
