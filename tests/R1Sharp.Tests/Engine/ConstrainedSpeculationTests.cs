// Speculation under a request's token constraint (a grammar from a JSON schema, as structured outputs use): every
// token that enters the output was allowed by the grammar when it came, the text is schema-valid (JsonSchema.Net
// decides), and with drafts chosen without randomness (n-grams) a seeded request gives the same text as without
// speculation.
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Grammar;
using R1Sharp.Sampling;
using R1Sharp.Tests.Grammar;

namespace R1Sharp.Tests.Engine;

public sealed class ConstrainedSpeculationTests : IClassFixture<SpeculativeDecodingTests.Models>
{
    private readonly SpeculativeDecodingTests.Models _m;

    public ConstrainedSpeculationTests(SpeculativeDecodingTests.Models m) => _m = m;

    private const string Schema = """{"type":"object","properties":{"name":{"type":"string","maxLength":12},"tags":{"type":"array","items":{"enum":["red","green","blue"]},"maxItems":6},"ok":{"type":"boolean"}},"required":["name","tags"],"additionalProperties":false}""";

    /// <summary>A grammar constraint that also records every token it is handed while active that it did not allow.</summary>
    private sealed class Checked(ITokenConstraint inner) : ITokenConstraint
    {
        public List<int> Refused { get; } = [];
        public bool Active => inner.Active;
        public bool IsAllowed(int token) => inner.IsAllowed(token);
        public void FillMask(Span<ulong> allowed) => inner.FillMask(allowed);

        public void Accept(int token, string text)
        {
            if (inner.Active && !inner.IsAllowed(token)) Refused.Add(token);
            inner.Accept(token, text);
        }
    }

    [Theory]
    [InlineData("self")]
    [InlineData("ngram")]
    public async Task ConstrainedRequestsStayInTheGrammarWithSpeculation(string proposer)
    {
        using var lm = LoadedModel.Load(_m.Qwen2, threads: 1);
        var grammar = CompiledGrammar.Create(JsonSchemaCompiler.Compile(Schema, new JsonSchemaOptions { Strict = true }), GrammarVocabulary.FromTokenizer(lm.Tokenizer));
        int[] prompt = lm.Tokenizer.Encode("Reply with JSON: ");
        const int Seeds = 6;

        async Task<List<(string Text, FinishReason? Finish, List<int> Refused)>> Run(SpeculationOptions? speculation)
        {
            using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration,
                new SchedulerOptions { Slots = Seeds, ContextSize = 1024, Speculation = speculation });
            var runs = Enumerable.Range(0, Seeds).Select(async seed =>
            {
                var c = new Checked(GrammarConstraint.ForAnswer(grammar, startsInReasoning: false));
                var request = new EngineRequest
                {
                    Prompt = prompt, MaxTokens = 600, Sampling = new SamplingParams { Temperature = 1, Seed = (ulong)seed + 5 }, Constraint = c,
                };
                var text = new System.Text.StringBuilder();
                FinishReason? finish = null;
                await foreach (var chunk in s.Submit(request))
                {
                    text.Append(chunk.Text);
                    finish = chunk.Finish ?? finish;
                }
                return (text.ToString(), finish, c.Refused);
            }).ToList();
            return [.. await Task.WhenAll(runs)];
        }

        var plain = await Run(null);
        using IDraftSource source = proposer == "self" ? DraftModelSource.Load(_m.Qwen2, lm, pMin: 0) : new NgramSource();
        var spec = await Run(new SpeculationOptions { Source = source, DraftMax = 6, MinAcceptRate = 0 });
        for (int i = 0; i < Seeds; i++)
        {
            var (text, finish, refused) = spec[i];
            Assert.True(refused.Count == 0, $"seed {i}: tokens the grammar refused entered the output: {string.Join(", ", refused)}; {text}");
            Assert.True(SchemaOracle.IsValid(Schema, text), $"seed {i}: schema-invalid output: {text}");
            Assert.Equal(FinishReason.Stop, finish);
            Assert.True(SchemaOracle.IsValid(Schema, plain[i].Text), $"seed {i}: schema-invalid output without speculation: {plain[i].Text}");
            if (proposer == "ngram") Assert.Equal(plain[i].Text, text);
        }
    }
}
