// POST /v1/chat/completions: messages → chat template → engine requests; the output is split into reasoning
// (message.reasoning_content, also as `reasoning`) and the answer (message.content), streamed or whole.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Server.Protocol;

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
        var tok = s.Model.Tokenizer;
        string text = ChatTemplates.Render(s.Template, messages, tok.BosText, addGenerationPrompt: true, thinking);
        int[] prompt = tok.Encode(text);
        string maxParam = req.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens";
        int maxTokens = Serving.ResolveMaxTokens(s, req.MaxCompletionTokens ?? req.MaxTokens, prompt.Length, "messages", maxParam);
        bool opensThink = ChatTemplates.PromptOpensThink(s.Template, thinking);
        if (req.ReasoningBudget is int rb && rb < -1) throw ApiException.Invalid($"reasoning_budget must be -1 (unlimited), 0 (no thinking) or positive (got {rb})", "reasoning_budget");
        int budget = req.ReasoningBudget is int b && b > 0 ? b : -1;

        var choices = new Choice[n];
        var requests = new EngineRequest[n];
        for (int i = 0; i < n; i++)
        {
            var tracker = new ReasoningTracker(opensThink, budget > 0 ? new ThinkingBudget(budget, _thinkClose) : null);
            choices[i] = new Choice(opensThink, tracker);
            requests[i] = Serving.ChoiceRequest(req, prompt, maxTokens, i) with { Steer = tracker.Steer };
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        try
        {
            var streams = Serving.SubmitAll(s, requests, cts);
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

    private static bool Thinking(ChatCompletionRequest req)
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

    private static List<ChatMessage> ToMessages(List<ChatMessageDto>? dtos)
    {
        if (dtos is null || dtos.Count == 0) throw ApiException.Invalid("'messages' must be a non-empty array", "messages");
        var list = new List<ChatMessage>(dtos.Count);
        for (int i = 0; i < dtos.Count; i++)
        {
            var m = dtos[i];
            string role = m.Role switch
            {
                "system" or "developer" => "system",
                "user" or "assistant" or "tool" => m.Role,
                _ => throw ApiException.Invalid($"messages[{i}].role must be system, developer, user, assistant or tool (got '{m.Role}')", $"messages[{i}].role"),
            };
            if (m.Content is null && role != "assistant")
                throw ApiException.Invalid($"messages[{i}].content is required for role '{role}'", $"messages[{i}].content");
            List<ToolCall>? calls = m.ToolCalls?.Select(c => new ToolCall(c.Type ?? "function", c.Function?.Name ?? "", c.Function?.Arguments ?? "")).ToList();
            list.Add(new ChatMessage(role, m.Content, calls is { Count: > 0 } ? calls : null));
        }
        return list;
    }

    private async Task CompleteAsync(HttpContext ctx, string id, long created, Choice[] choices, IAsyncEnumerable<GenerationChunk>[] streams,
        int promptTokens, TokenClock clock, CancellationToken ct)
    {
        await foreach (var (i, chunk) in Serving.Merge(streams, ct))
        {
            if (i == 0) clock.Tokens(chunk.Tokens);
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
                    Content = c.Content.ToString(),
                    ReasoningContent = c.Reasoning.Length > 0 ? c.Reasoning.ToString() : null,
                    Reasoning = c.Reasoning.Length > 0 ? c.Reasoning.ToString() : null,
                },
                FinishReason = Serving.FinishReasonName(c.Finish ?? FinishReason.Stop),
            }).ToList(),
            Usage = MakeUsage(choices, promptTokens),
        };
        await Serving.WriteJsonAsync(ctx, response, ProtocolJson.Wire.ChatCompletionResponse);
    }

    private async Task StreamAsync(HttpContext ctx, string id, long created, Choice[] choices, IAsyncEnumerable<GenerationChunk>[] streams,
        bool includeUsage, int promptTokens, TokenClock clock, CancellationToken ct)
    {
        var info = ProtocolJson.Wire.ChatCompletionChunk;
        ChatCompletionChunk Chunk(int index, Delta delta, string? finish = null) =>
            new() { Id = id, Created = created, Model = s.ModelId, Choices = [new ChunkChoice { Index = index, Delta = delta, FinishReason = finish }] };

        Serving.StartEventStream(ctx);
        for (int i = 0; i < choices.Length; i++)
            await Serving.WriteEventAsync(ctx, Chunk(i, new Delta { Role = "assistant" }), info);
        await foreach (var (i, chunk) in Serving.Merge(streams, ct))
        {
            if (i == 0) clock.Tokens(chunk.Tokens);
            var (reasoning, content) = choices[i].Take(chunk);
            // reasoning first, then the answer, as DeepSeek streams them
            if (reasoning.Length > 0) await Serving.WriteEventAsync(ctx, Chunk(i, new Delta { ReasoningContent = reasoning, Reasoning = reasoning }), info);
            if (content.Length > 0) await Serving.WriteEventAsync(ctx, Chunk(i, new Delta { Content = content }), info);
            if (chunk.Finish is FinishReason f)
            {
                await Serving.WriteEventAsync(ctx, Chunk(i, new Delta(), Serving.FinishReasonName(f)), info);
            }
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
            CompletionTokensDetails = new CompletionTokensDetails(choices.Sum(c => c.Tracker.ReasoningTokens)),
        };
    }

    /// <summary>One choice as the client sees it: its reasoning and answer so far.</summary>
    private sealed class Choice(bool startsInReasoning, ReasoningTracker tracker)
    {
        private readonly ReasoningParser _parser = new(startsInReasoning);
        public readonly ReasoningTracker Tracker = tracker;
        public readonly StringBuilder Reasoning = new(), Content = new();
        public FinishReason? Finish;
        public GenerationUsage? Usage;

        public (string Reasoning, string Content) Take(GenerationChunk chunk)
        {
            var d = _parser.Push(chunk.Text);
            string reasoning = d.Reasoning, content = d.Content;
            if (chunk.Finish is FinishReason f)
            {
                var tail = _parser.Flush();
                reasoning += tail.Reasoning;
                content += tail.Content;
                Finish = f;
                Usage = chunk.Usage;
            }
            Reasoning.Append(reasoning);
            // R1 puts a blank line after </think>; the answer starts after it
            if (Content.Length == 0 && Reasoning.Length > 0) content = content.TrimStart('\n');
            Content.Append(content);
            return (reasoning, content);
        }
    }
}
