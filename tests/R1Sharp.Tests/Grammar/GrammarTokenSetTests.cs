// The token sets of stack-top states, computed the fast ways (a shared part found by a state's bounded key, a part
// mended from a reference state that differs in a few first bytes, the long tokens walked apart), against a walk
// of the whole token trie from the state alone: the accepted tokens and the tokens that leave the frame (with the
// bytes read when they leave) must be equal. Over the Qwen2.5 vocabulary, on schemas that exercise each way
// (objects with additionalProperties and declared names sharing prefixes, bounded strings, patterns, formats) and on
// a sample of JSONSchemaBench's MaskBench schemas (skipped with a message where the corpus is absent), several
// grammars in a row on one vocabulary so that parts computed for one are found or mended by the next.
using System.Text.Json;
using R1Sharp.Grammar;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Grammar;

public sealed class GrammarTokenSetTests(ITestOutputHelper output)
{
    private static readonly string[] s_schemas =
    [
        """{"type":"object","properties":{"name":{"type":"string"},"names":{"type":"array","items":{"type":"string"}},"nickname":{"type":"string"},"age":{"type":"integer"}}}""",
        """{"type":"object","properties":{"id":{"type":"integer"},"identity":{"type":"string"},"idle":{"type":"boolean"}},"additionalProperties":{"type":"string","maxLength":40}}""",
        """{"type":"object","properties":{"title":{"type":"string","maxLength":300},"code":{"type":"string","minLength":2,"maxLength":30},"tag":{"type":"string","maxLength":5}},"required":["title"]}""",
        """{"type":"object","properties":{"url":{"type":"string","pattern":"^https?://"},"mail":{"type":"string","format":"email"},"when":{"type":"string","format":"date-time"},"arn":{"type":"string","pattern":"^arn:aws:iam::[0-9]{12}:role/[A-Za-z_+=,.@-]+$"}}}""",
        """{"type":"object","properties":{"kind":{"enum":["alpha","alphabet","beta","\u00e9t\u00e9"]},"note":{"type":"string"},"ünï":{"type":"number"}},"additionalProperties":true}""",
        """{"type":"array","items":{"type":"object","properties":{"a_b":{"type":"string"},"a_c":{"type":"string"},"\u4e2d\u6587":{"type":"string"}}},"maxItems":3}""",
    ];

    // texts that walk each schema through its keys (declared, prefixes of declared, other) and strings
    private static readonly string[][] s_texts =
    [
        ["""{"name":"x","nam":1,"nick":[],"nickname":"a b","ag":null,"age":3,"zzz":{"k":"v"}}""", """{"names":["aa","bb"],"n":"n","":2}"""],
        ["""{"id":1,"iden":"x","identity":"who","idle":true,"i":"1234567890123456789012345678901234567890"}""", """{"idlex":"y","ide":""}"""],
        ["""{"title":"A fairly long title that goes on and on for more than fifty characters, well past the split","code":"abcdefghijklmnopqrstuvwxyz0123","tag":"short"}"""],
        ["""{"url":"https://example.com/a/b","mail":"first.last@example.org","when":"2024-02-29T12:30:00Z","arn":"arn:aws:iam::123456789012:role/Admin_Role"}"""],
        ["""{"kind":"alphabet","note":"über naïve café","ünï":-1.5e3,"other":[1,2,{"x":null}]}""", """{"kind":"été","kin":"d"}"""],
        ["""[{"a_b":"1","a_c":"2","中文":"中"},{"a_c":"z"}]"""],
    ];

    [Fact]
    public void SetsEqualTheWholeTrieWalk_OnSchemasThatExerciseEachWay()
    {
        var vocab = GrammarTestVocab.Qwen;
        int states = 0, found = 0, mended = 0;
        for (int i = 0; i < s_schemas.Length; i++)
        {
            var g = CompiledGrammar.Create(JsonSchemaCompiler.Compile(s_schemas[i]), vocab);
            states += CheckGrammar($"schema {i}", g, [.. s_texts[i]], seed: i, randomSteps: 40);
            found += g.PartsFound;
            mended += g.PartsMended;
        }
        output.WriteLine($"{states} token sets compared; short parts found by key {found}, mended {mended}");
        Assert.True(states > 100);
        Assert.True(found > 0 && mended > 0, "both fast ways were taken");
    }

    [Fact]
    public void SetsEqualTheWholeTrieWalk_OnMaskBenchSchemas()
    {
        using var doc = MaskBenchCorpusTests.Load(out string why);
        if (doc is null)
        {
            output.WriteLine($"skipped: {why}");
            return;
        }
        var vocab = GrammarTestVocab.Qwen;
        var entries = doc.RootElement.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        int step = entries.Count / 40, grammars = 0, states = 0;
        for (int i = 7; i < entries.Count; i += step)
        {
            var e = entries[i].Value;
            CompiledGrammar g;
            try { g = CompiledGrammar.Create(JsonSchemaCompiler.Compile(JsonText.Canonical(e.GetProperty("schema"))), vocab); }
            catch (GrammarException) { continue; }
            var texts = new List<string>();
            foreach (var t in e.GetProperty("tests").EnumerateArray())
                if (t.GetProperty("valid").GetBoolean()) texts.Add(JsonText.Canonical(t.GetProperty("data")));
            states += CheckGrammar(entries[i].Name, g, texts, seed: i, randomSteps: 30);
            grammars++;
        }
        output.WriteLine($"{grammars} grammars, {states} token sets compared");
        Assert.True(grammars >= 25);
    }

    // Feeds the texts (as far as the grammar takes them) and a random walk over allowed tokens, computing the mask at
    // each step, then compares every token set the grammar computed with the whole-trie walk. Returns the sets compared.
    private static int CheckGrammar(string name, CompiledGrammar g, List<string> texts, int seed, int randomSteps)
    {
        var vocab = g.Vocabulary;
        var mask = new ulong[vocab.MaskWords];
        foreach (string text in texts)
        {
            var m = g.CreateMatcher();
            foreach (int id in GrammarTestVocab.QwenTokenizer.Encode(text, parseSpecial: false))
            {
                m.FillMask(mask);
                if (!m.Accept(id)) break;
            }
        }
        var rng = new Random(seed);
        var walker = g.CreateMatcher();
        for (int k = 0; k < randomSteps; k++)
        {
            walker.FillMask(mask);
            var allowed = new List<int>();
            for (int t = 0; t < vocab.Size; t++)
                if ((mask[t >> 6] >> (t & 63) & 1) != 0 && !vocab.IsEnd(t)) allowed.Add(t);
            if (allowed.Count == 0) break;
            // prefer short tokens now and then, so that the walk gets into keys and strings one character at a time
            int pick = allowed[rng.Next(allowed.Count)];
            if (rng.Next(2) == 0)
                for (int tries = 0; tries < 20 && vocab.Bytes(pick).Length > 1; tries++) pick = allowed[rng.Next(allowed.Count)];
            Assert.True(walker.Accept(pick));
        }
        var sets = g.ComputedSets();
        foreach (var (state, set) in sets)
        {
            var expected = g.ComputeByFullWalk(state);
            var got = new ulong[vocab.MaskWords];
            var want = new ulong[vocab.MaskWords];
            set.OrInto(got);
            expected.OrInto(want);
            if (!got.AsSpan().SequenceEqual(want))
            {
                int t = Enumerable.Range(0, vocab.Size).First(t => ((got[t >> 6] ^ want[t >> 6]) >> (t & 63) & 1) != 0);
                Assert.Fail($"{name}: state {state}: token {t} ({JsonSerializer.Serialize(System.Text.Encoding.UTF8.GetString(vocab.Bytes(t)))}) is {((want[t >> 6] >> (t & 63) & 1) != 0 ? "accepted by the whole walk but not" : "not accepted by the whole walk but")} in the set");
            }
            Assert.Equal(expected.AcceptedCount, set.AcceptedCount);
            Assert.Equal(expected.UncertainEntries, set.UncertainEntries);
        }
        return sets.Count;
    }
}
