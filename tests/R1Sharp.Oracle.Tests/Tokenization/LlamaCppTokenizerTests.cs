// llama.cpp (through LLamaSharp, vocab-only) as a second oracle for the tokenizer: it must load the GGUF
// vocabularies we write (TinyVocab for synthetic models, the R1-Distill-Qwen overlay) and tokenize the corpus
// as we do. llama.cpp applies no NFC, so strings NFC would change are left out of the comparison.
using System.Text;
using System.Text.Json;
using LLama;
using LLama.Common;
using R1Sharp.Formats;
using R1Sharp.Tokenization;

namespace R1Sharp.Oracle.Tests.Tokenization;

public sealed class LlamaCppTokenizerTests
{
    private static string[] Corpus() => JsonSerializer.Deserialize<string[]>(
        File.ReadAllBytes(RepoPaths.Get("tests/R1Sharp.Tests/Tokenization/oracle/corpus.json")))!;

    // A vocabulary-only qwen2 GGUF: llama.cpp still reads the hyperparameters, so the required ones are there.
    private static string WriteVocabGguf(TokenizerData data, string name)
    {
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("qwen2"));
        w.SetMetadata("general.name", GgufValue.Of(name));
        w.SetMetadata("qwen2.context_length", GgufValue.Of(4096u));
        w.SetMetadata("qwen2.embedding_length", GgufValue.Of(64u));
        w.SetMetadata("qwen2.feed_forward_length", GgufValue.Of(128u));
        w.SetMetadata("qwen2.block_count", GgufValue.Of(1u));
        w.SetMetadata("qwen2.attention.head_count", GgufValue.Of(4u));
        w.SetMetadata("qwen2.attention.head_count_kv", GgufValue.Of(4u));
        w.SetMetadata("qwen2.attention.layer_norm_rms_epsilon", GgufValue.Of(1e-6f));
        w.SetMetadata("qwen2.rope.freq_base", GgufValue.Of(10000f));
        foreach (var (k, v) in data.ToGgufMetadata()) w.SetMetadata(k, v);
        string path = Path.Combine(Path.GetTempPath(), $"r1sharp-{name}-{Environment.ProcessId}.gguf");
        w.Write(path);
        return path;
    }

    private static void CompareWithLlamaCpp(TokenizerData data, string name, IEnumerable<string> texts, int minCompared)
    {
        var ours = new BpeTokenizer(data);
        string path = WriteVocabGguf(data, name);
        try
        {
            using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { VocabOnly = true });
            int compared = 0, failures = 0;
            var report = new StringBuilder();
            foreach (string s in texts)
            {
                if (!Nfc.IsStable(s) || s.Contains('\0')) continue; // llama.cpp takes NUL-terminated strings
                compared++;
                int[] expected = [.. weights.Tokenize(s, false, true, Encoding.UTF8).Select(t => (int)t)];
                int[] actual = ours.Encode(s);
                if (expected.AsSpan().SequenceEqual(actual)) continue;
                if (++failures <= 10) report.AppendLine($"{JsonSerializer.Serialize(s)}\n  llama.cpp: {string.Join(' ', expected)}\n  ours:      {string.Join(' ', actual)}");
            }
            Assert.True(compared >= minCompared, $"only {compared} strings compared");
            Assert.True(failures == 0, $"{name}: {failures} of {compared} strings tokenize differently from llama.cpp\n{report}");

            // Bos is added where the vocabulary asks for it.
            int[] withBos = [.. weights.Tokenize("hi", true, true, Encoding.UTF8).Select(t => (int)t)];
            Assert.Equal(ours.Encode("hi", addBos: data.AddBos), withBos);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void TinyVocabLoadsAndTokenizesAsInLlamaCpp() =>
        CompareWithLlamaCpp(TinyVocab.Build(), "tiny", Corpus(), 500);

    [Theory]
    [InlineData("tokenizer-qwen2_5", true)]
    [InlineData("tokenizer-qwen2_5", false)]
    [InlineData("tokenizer-deepseek_v3", false)]
    [InlineData("tokenizer-llama3_1", false)]
    public void HuggingFaceVocabsTokenizeAsInLlamaCpp(string package, bool r1Overlay)
    {
        string models = NpmPackages.HfTokenizerModels(package);
        var data = TokenizerData.FromHuggingFace(Path.Combine(models, "tokenizer.json"), Path.Combine(models, "tokenizer_config.json"));
        if (r1Overlay) data = R1Vocab.ApplyDistillQwenOverlay(data);
        CompareWithLlamaCpp(data, package + (r1Overlay ? "-r1" : ""), Corpus(), 500);
    }
}
