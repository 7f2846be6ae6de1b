// The OpenAI wire format (with DeepSeek's reasoning_content and the vLLM/llama.cpp extensions we accept), as plain
// records. Names are snake_case on the wire (see ProtocolJson); nothing here knows about the engine.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace R1Sharp.Server.Protocol;

/// <summary>What the chat and the completions requests share: the model, the length limit and the sampling.</summary>
public abstract record GenerationRequest
{
    public string? Model { get; init; }
    public int? MaxTokens { get; init; }
    public float? Temperature { get; init; }
    public float? TopP { get; init; }
    /// <summary>vLLM/llama.cpp extension.</summary>
    public int? TopK { get; init; }
    /// <summary>vLLM/llama.cpp extension.</summary>
    public float? MinP { get; init; }
    public long? Seed { get; init; }
    [JsonConverter(typeof(StopConverter))]
    public List<string>? Stop { get; init; }
    public int? N { get; init; }
    public float? PresencePenalty { get; init; }
    public float? FrequencyPenalty { get; init; }
    /// <summary>vLLM/llama.cpp extension.</summary>
    public float? RepetitionPenalty { get; init; }
    public bool? Stream { get; init; }
    public StreamOptions? StreamOptions { get; init; }
    /// <summary>vLLM extension: keep generating past end-of-sequence (benchmarks).</summary>
    public bool? IgnoreEos { get; init; }
}

public sealed record ChatCompletionRequest : GenerationRequest
{
    public List<ChatMessageDto>? Messages { get; init; }
    public int? MaxCompletionTokens { get; init; }
    /// <summary>vLLM/llama.cpp: <c>{"enable_thinking": false}</c> (or <c>"thinking"</c>, DeepSeek-V3.1's name) turns reasoning off.</summary>
    public Dictionary<string, JsonElement>? ChatTemplateKwargs { get; init; }
    /// <summary>llama.cpp: most reasoning tokens before &lt;/think&gt; is forced; -1 unlimited, 0 no thinking.</summary>
    public int? ReasoningBudget { get; init; }
    /// <summary>Function tools the model may call (OpenAI's {"type":"function","function":{...}} objects).</summary>
    public List<JsonElement>? Tools { get; init; }
    /// <summary>"none", "auto", "required", or {"type":"function","function":{"name":...}}.</summary>
    public JsonElement? ToolChoice { get; init; }
    /// <summary>false: at most one call per answer.</summary>
    public bool? ParallelToolCalls { get; init; }
    /// <summary>{"type":"text"}, {"type":"json_object"} or {"type":"json_schema","json_schema":{"name","schema","strict"}}.</summary>
    public JsonElement? ResponseFormat { get; init; }
    /// <summary>llama.cpp extension: a GBNF grammar the answer must follow.</summary>
    public string? Grammar { get; init; }
    /// <summary>true: each token's log probability in choices[].logprobs.</summary>
    public bool? Logprobs { get; init; }
    /// <summary>0-20 most likely tokens beside each one; needs logprobs.</summary>
    public int? TopLogprobs { get; init; }
}

public sealed record ChatMessageDto
{
    public string? Role { get; init; }
    [JsonConverter(typeof(ContentConverter))]
    public string? Content { get; init; }
    public string? Name { get; init; }
    public List<ToolCallDto>? ToolCalls { get; init; }
    public string? ToolCallId { get; init; }
    /// <summary>Reasoning of an earlier assistant turn: accepted and dropped from the prompt, as R1 expects.</summary>
    public string? ReasoningContent { get; init; }
}

public sealed record ToolCallDto
{
    public string? Id { get; init; }
    public string? Type { get; init; }
    public FunctionCallDto? Function { get; init; }
}

public sealed record FunctionCallDto
{
    public string? Name { get; init; }
    public string? Arguments { get; init; }
}

public sealed record StreamOptions
{
    public bool? IncludeUsage { get; init; }
}

public sealed record CompletionRequest : GenerationRequest
{
    /// <summary>llama.cpp extension: a GBNF grammar the completion must follow.</summary>
    public string? Grammar { get; init; }
    /// <summary>The legacy form: each token's log probability and this many most likely tokens (0-20).</summary>
    public int? Logprobs { get; init; }
    [JsonConverter(typeof(PromptConverter))]
    public PromptInput? Prompt { get; init; }
}

/// <summary>A completions prompt: a string, an array of strings, an array of token ids, or an array of those.</summary>
public sealed record PromptInput(List<string>? Texts, List<int[]>? TokenLists)
{
    public int Count => Texts?.Count ?? TokenLists!.Count;
}

public sealed record Usage
{
    public required int PromptTokens { get; init; }
    public required int CompletionTokens { get; init; }
    public required int TotalTokens { get; init; }
    public PromptTokensDetails? PromptTokensDetails { get; init; }
    public CompletionTokensDetails? CompletionTokensDetails { get; init; }
}

public sealed record PromptTokensDetails(int CachedTokens);

public sealed record CompletionTokensDetails(int ReasoningTokens);

/// <summary>What every response object and stream chunk carries; <see cref="Object"/> says which it is.</summary>
public abstract record ResponseEnvelope<TChoice> where TChoice : ChoiceBase
{
    [JsonPropertyOrder(-2)]
    public required string Id { get; init; }
    [JsonPropertyOrder(-1)]
    public abstract string Object { get; }
    public required long Created { get; init; }
    public required string Model { get; init; }
    public required List<TChoice> Choices { get; init; }
    public Usage? Usage { get; init; }
    public string SystemFingerprint { get; init; } = "r1sharp";
}

/// <summary>What every choice carries; a finish reason and logprobs are written even when null, as OpenAI does.</summary>
public abstract record ChoiceBase
{
    [JsonPropertyOrder(-1)]
    public required int Index { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public object? Logprobs { get; init; }
}

public sealed record ChatCompletionResponse : ResponseEnvelope<ChatChoice>
{
    public override string Object => "chat.completion";
}

public sealed record ChatChoice : ChoiceBase
{
    public required ResponseMessage Message { get; init; }
}

public sealed record ResponseMessage
{
    public string Role { get; init; } = "assistant";
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Content { get; init; }
    /// <summary>DeepSeek's name for the chain of thought.</summary>
    public string? ReasoningContent { get; init; }
    /// <summary>The same text under the name Ollama and newer vLLM use.</summary>
    public string? Reasoning { get; init; }
    public List<ToolCallDto>? ToolCalls { get; init; }
}

/// <summary>A streamed piece of a tool call: id, type and name in its first piece, argument fragments after.</summary>
public sealed record ToolCallDelta
{
    public required int Index { get; init; }
    public string? Id { get; init; }
    public string? Type { get; init; }
    public required FunctionCallDto Function { get; init; }
}

public sealed record ChatCompletionChunk : ResponseEnvelope<ChunkChoice>
{
    public override string Object => "chat.completion.chunk";
}

public sealed record ChunkChoice : ChoiceBase
{
    public required Delta Delta { get; init; }
}

public sealed record Delta
{
    public string? Role { get; init; }
    public string? Content { get; init; }
    public string? ReasoningContent { get; init; }
    public string? Reasoning { get; init; }
    public List<ToolCallDelta>? ToolCalls { get; init; }
}

public sealed record CompletionResponse : ResponseEnvelope<CompletionChoice>
{
    public override string Object => "text_completion";
}

public sealed record CompletionChoice : ChoiceBase
{
    public required string Text { get; init; }
}

/// <summary>
/// A chat choice's log probabilities: the answer's tokens in <see cref="Content"/> as OpenAI sends them, the
/// reasoning's in <see cref="ReasoningContent"/> beside it.
/// </summary>
public sealed record ChatLogprobs
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public List<TokenLogprob>? Content { get; init; }
    public List<TokenLogprob>? ReasoningContent { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public List<TokenLogprob>? Refusal { get; init; }
}

/// <summary>One token: its text, log probability, UTF-8 bytes, and the most likely tokens at its position.</summary>
public sealed record TokenLogprob
{
    public required string Token { get; init; }
    public required float Logprob { get; init; }
    public required List<int> Bytes { get; init; }
    public required List<TopLogprob> TopLogprobs { get; init; }
}

public sealed record TopLogprob
{
    public required string Token { get; init; }
    public required float Logprob { get; init; }
    public required List<int> Bytes { get; init; }
}

/// <summary>The completions endpoint's (legacy) log probabilities: parallel lists, one entry per token.</summary>
public sealed record CompletionLogprobs
{
    public required List<string> Tokens { get; init; }
    public required List<float> TokenLogprobs { get; init; }
    public required List<Dictionary<string, float>> TopLogprobs { get; init; }
    /// <summary>Where each token starts in the choice's text (in UTF-16 units, as the text is counted).</summary>
    public required List<int> TextOffset { get; init; }
}

public sealed record ModelList(List<ModelCard> Data)
{
    public string Object { get; init; } = "list";
}

public sealed record ModelCard(string Id, long Created, string OwnedBy, int MaxModelLen)
{
    public string Object { get; init; } = "model";
}

/// <param name="SlotsIdle">Slots no request holds (llama.cpp's name).</param>
public sealed record HealthResponse(string Status, int Running, int Queued, int Slots, int SlotsIdle);

public sealed record ErrorResponse(ErrorBody Error);

public sealed record ErrorBody(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(ChatCompletionResponse))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(CompletionResponse))]
[JsonSerializable(typeof(ChatLogprobs))]
[JsonSerializable(typeof(CompletionLogprobs))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ErrorResponse))]
public sealed partial class ProtocolJson : JsonSerializerContext
{
    /// <summary>
    /// The context the server reads and writes with: the generated one's naming and null handling, and strings
    /// escaped only where JSON requires it (<see cref="WireEncoder"/>), as the OpenAI and DeepSeek APIs write them.
    /// </summary>
    public static ProtocolJson Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        Encoder = WireEncoder.Instance,
    });
}
