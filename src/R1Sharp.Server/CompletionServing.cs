// POST /v1/completions: raw prompts (text or token ids), no chat template, no reasoning split.
using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Http;
using R1Sharp.Engine;
using R1Sharp.Grammar;
using R1Sharp.Server.Protocol;

namespace R1Sharp.Server;

internal sealed class CompletionServing(ServingContext s)
{
    public async Task HandleAsync(HttpContext ctx)
    {
        long started = Stopwatch.GetTimestamp();
        var req = await Serving.ReadBodyAsync(ctx, ProtocolJson.Wire.CompletionRequest, ApiEndpoints.Completions, s.Options.MaxBodyBytes);
        Serving.CheckModel(s, req.Model);
        if (req.Prompt is null) throw ApiException.Invalid("'prompt' is required", "prompt");
        int n = Serving.CheckChoices(req.N);
        var tok = s.Model.Tokenizer;
        var prompts = req.Prompt.Texts?.Select(t => tok.Encode(t, addBos: tok.AddBos)).ToList() ?? req.Prompt.TokenLists!;
        if (prompts.Count * n > Serving.MaxChoices) throw ApiException.Invalid($"at most {Serving.MaxChoices} completions per request (prompts × n)", "n");

        int? logProbs = LogProbsFormat.CompletionRequest(req);
        AnswerSpec? answer = null;
        if (req.Grammar is { } gbnf)
        {
            answer = AnswerSpec.Grammar(s.Template, gbnf);
            // compiled here (and cached) so that a bad grammar is a 400 wherever the job then runs
            try { answer.Plan(tok); }
            catch (GrammarException e) { throw ApiException.Invalid(e.Message, "grammar"); }
        }
        var requests = new List<GenerationJob>();
        foreach (var prompt in prompts)
        {
            // OpenAI's default is 16 tokens
            int? requested = req.MaxTokens ?? (prompt.Length < s.Scheduler.ContextSize ? Math.Min(16, s.Scheduler.ContextSize - prompt.Length) : null);
            int maxTokens = Serving.ResolveMaxTokens(s, requested, prompt.Length, "prompt", "max_tokens");
            for (int j = 0; j < n; j++) requests.Add(new GenerationJob(Serving.ChoiceRequest(req, prompt, maxTokens, j) with { LogProbs = logProbs }, Answer: answer));
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        try
        {
            var streams = await Serving.SubmitAllAsync(s, requests, cts);
            string id = Serving.NewId("cmpl-");
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var clock = new TokenClock(s.Metrics, started);
            var texts = requests.Select(_ => new StringBuilder()).ToArray();
            var finish = new FinishReason?[requests.Count];
            var usage = new GenerationUsage?[requests.Count];
            var logprobs = logProbs is null ? null : requests.Select(_ => LogProbsFormat.NewLegacy()).ToArray();
            var offsets = new int[requests.Count];
            bool stream = req.Stream == true;
            var info = ProtocolJson.Wire.CompletionResponse;
            if (stream) Serving.StartEventStream(ctx);
            await foreach (var (i, job) in Serving.Merge(streams, cts.Token))
            {
                var chunk = job.Chunk;
                if (i == 0) clock.Tokens(chunk.Tokens);
                texts[i].Append(chunk.Text);
                if (chunk.Finish is FinishReason f)
                {
                    finish[i] = f;
                    usage[i] = chunk.Usage;
                }
                // streamed, each chunk carries its own tokens, their offsets counted from the start of the choice's text
                CompletionLogprobs? lp = null;
                if (logprobs is not null && chunk.LogProbs is { Count: > 0 } tokens)
                {
                    lp = stream ? LogProbsFormat.NewLegacy() : logprobs[i];
                    LogProbsFormat.AppendLegacy(tok, lp, tokens, ref offsets[i]);
                }
                if (stream && (chunk.Text.Length > 0 || chunk.Finish != null || lp is not null))
                    await Serving.WriteEventAsync(ctx, new CompletionResponse
                    {
                        Id = id, Created = created, Model = s.ModelId,
                        Choices = [new CompletionChoice { Index = i, Text = chunk.Text, FinishReason = chunk.Finish is FinishReason r ? Serving.FinishReasonName(r) : null, Logprobs = lp }],
                    }, info);
            }
            int promptTokens = prompts.Sum(p => p.Length), completion = usage.Sum(u => u?.CompletionTokens ?? 0);
            var total = new Usage
            {
                PromptTokens = promptTokens,
                CompletionTokens = completion,
                TotalTokens = promptTokens + completion,
                PromptTokensDetails = new PromptTokensDetails(usage.Sum(u => u?.CachedPromptTokens ?? 0) / n),
            };
            if (stream)
            {
                if (req.StreamOptions?.IncludeUsage == true)
                    await Serving.WriteEventAsync(ctx, new CompletionResponse { Id = id, Created = created, Model = s.ModelId, Choices = [], Usage = total }, info);
                await Serving.WriteDoneAsync(ctx);
            }
            else
            {
                await Serving.WriteJsonAsync(ctx, new CompletionResponse
                {
                    Id = id, Created = created, Model = s.ModelId, Usage = total,
                    Choices = texts.Select((t, i) => new CompletionChoice
                    {
                        Index = i, Text = t.ToString(), FinishReason = Serving.FinishReasonName(finish[i] ?? FinishReason.Stop), Logprobs = logprobs?[i],
                    }).ToList(),
                }, info);
            }
        }
        finally
        {
            cts.Cancel();
        }
    }
}
