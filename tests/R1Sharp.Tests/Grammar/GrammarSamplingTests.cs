// A random-weight tiny qwen2 model sampling at temperature 1 under schema grammars: the mask is applied to the
// logits before the sampler draws (as the engine will), every sampled token is accepted by the matcher, the
// output ends with the end token within the budget, and JsonSchema.Net finds every output valid.
using R1Sharp.Engine;
using R1Sharp.Grammar;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Grammar;

public sealed class GrammarSamplingTests(GrammarSamplingTests.Model fixture, ITestOutputHelper output) : IClassFixture<GrammarSamplingTests.Model>
{
    public sealed class Model : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-grammar-sample-").FullName;
        public LoadedModel Lm { get; }

        public Model()
        {
            string path = Path.Combine(_dir, "tiny.gguf");
            Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 13, path);
            Lm = LoadedModel.Load(path, threads: 1);
        }

        public void Dispose()
        {
            Lm.Dispose();
            Directory.Delete(_dir, true);
        }
    }

    private const int MaxTokens = 1500;

    public static TheoryData<string> Schemas =>
    [
        """{"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 150}, "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 4}, "ok": {"type": "boolean"}}, "required": ["name", "age"]}""",
        """{"type": "array", "items": {"anyOf": [{"type": "number", "minimum": -10, "maximum": 10}, {"type": "null"}, {"type": "string", "format": "date"}]}, "minItems": 1, "maxItems": 5}""",
        """{"type": "object", "properties": {"id": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"}, "when": {"type": "string", "format": "date-time"}, "kind": {"oneOf": [{"const": "a"}, {"type": "integer", "exclusiveMinimum": 5}]}}, "required": ["id", "when", "kind"]}""",
        """{"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}}, "type": "object", "properties": {"points": {"type": "array", "items": {"$ref": "#/$defs/pt"}, "minItems": 1, "maxItems": 3}, "label": {"type": ["string", "null"], "maxLength": 8}}, "required": ["points"]}""",
    ];

    [Theory]
    [MemberData(nameof(Schemas))]
    public void SamplesAreSchemaValidAndEnd(string schema)
    {
        var lm = fixture.Lm;
        var vocab = GrammarVocabulary.FromTokenizer(lm.Tokenizer);
        var grammar = CompiledGrammar.Create(JsonSchemaCompiler.Compile(schema, new JsonSchemaOptions { Strict = true }), vocab);
        var oracle = SchemaOracle.Load(schema);
        int[] prompt = lm.Tokenizer.Encode("Reply with JSON: ");
        var mask = new ulong[vocab.MaskWords];
        for (ulong seed = 1; seed <= 5; seed++)
        {
            using var session = new InferenceSession(lm.Model, prompt.Length + MaxTokens + 1);
            var sampler = new Sampler(new SamplingParams { Temperature = 1, TopP = 1, Seed = seed });
            var matcher = grammar.CreateMatcher();
            var generated = new List<int>();
            float[] masked = new float[session.VocabSize];
            float[] logits = session.Evaluate(prompt).ToArray();
            var one = new int[1];
            bool ended = false;
            while (generated.Count < MaxTokens)
            {
                // mask before sampling: disallowed tokens get -inf
                matcher.FillMask(mask);
                for (int t = 0; t < masked.Length; t++)
                    masked[t] = t < vocab.Size && (mask[t >> 6] >> (t & 63) & 1) != 0 ? logits[t] : float.NegativeInfinity;
                int token = sampler.Sample(masked, generated.ToArray());
                Assert.True(matcher.Accept(token), $"sampled token {token} was not allowed");
                if (vocab.IsEnd(token)) { ended = true; break; }
                generated.Add(token);
                one[0] = token;
                logits = session.Evaluate(one).ToArray();
            }
            string text = lm.Tokenizer.Decode(generated.ToArray());
            output.WriteLine($"seed {seed}: {generated.Count} tokens: {text}");
            Assert.True(ended, $"no end token after {MaxTokens} tokens: {text}");
            Assert.True(matcher.IsTerminated);
            Assert.True(SchemaOracle.IsValid(oracle, text), $"schema-invalid output: {text}");
        }
    }
}
