// tokenizer.ggml.bos_token_id and eos_token_id are optional in GGUF (converted models and vocab-only files lack
// them): without BOS nothing is prepended (asking for it is a clear error), without EOS generation ends on the
// end-of-turn tokens found by text. Real vocabularies (Qwen2.5, R1-Distill-Qwen, Llama 3.1, DeepSeek-V3) for the
// tokenizer, and tiny models of each architecture for generation that stops.
using System.Text.Json;
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;
using R1Sharp.Tests.Cli;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Tokenization;

public sealed class OptionalSpecialIdsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-optional-ids-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    public static TheoryData<string, string> Drops => new()
    {
        { "qwen2_5", "bos" }, { "qwen2_5", "eos" }, { "qwen2_5", "both" },
        { "r1_distill_qwen", "bos" }, { "r1_distill_qwen", "eos" }, { "r1_distill_qwen", "both" },
        { "llama3_1", "bos" }, { "llama3_1", "eos" }, { "llama3_1", "both" },
        { "deepseek_v3", "bos" }, { "deepseek_v3", "eos" }, { "deepseek_v3", "both" },
    };

    private static TokenizerData Vocab(string name)
    {
        string dir = OracleCache.ModelsDir(name switch
        {
            "qwen2_5" or "r1_distill_qwen" => "tokenizer-qwen2_5",
            "llama3_1" => "tokenizer-llama3_1",
            _ => "tokenizer-deepseek_v3",
        });
        var data = TokenizerData.FromHuggingFace(Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, "tokenizer_config.json"));
        return name == "r1_distill_qwen" ? R1Vocab.ApplyDistillQwenOverlay(data) : data;
    }

    private static string[] Dropped(string drop) => drop switch
    {
        "bos" => ["tokenizer.ggml.bos_token_id"],
        "eos" => ["tokenizer.ggml.eos_token_id"],
        _ => ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"],
    };

    private string WriteVocabGguf(TokenizerData data, string file, string[] drop)
    {
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("qwen2"));
        foreach (var (k, v) in data.ToGgufMetadata())
            if (!drop.Contains(k)) w.SetMetadata(k, v);
        string path = Path.Combine(_dir, file);
        w.Write(path);
        return path;
    }

    [Theory]
    [MemberData(nameof(Drops))]
    public void VocabularyWithoutTheKeyTokenizesAsWithIt(string name, string drop)
    {
        var data = Vocab(name);
        string full = WriteVocabGguf(data, "full.gguf", []);
        string lacking = WriteVocabGguf(data, "lacking.gguf", Dropped(drop));
        TokenizerData withKeys, without;
        using (var f = GgufFile.Open(full)) withKeys = TokenizerData.FromGgufMetadata(f.Metadata);
        using (var f = GgufFile.Open(lacking)) without = TokenizerData.FromGgufMetadata(f.Metadata);
        var a = new BpeTokenizer(withKeys);
        var b = new BpeTokenizer(without);

        // the same ids for every corpus string and for the chat markup, BOS only where the file names it
        foreach (string s in OracleCache.Instance.Corpus) Assert.Equal(a.Encode(s), b.Encode(s));
        Assert.Equal(drop == "eos" && a.AddBos, b.AddBos);
        Assert.Equal(drop == "eos" ? a.BosText : "", b.BosText);
        if (b.BosId is null) Assert.Throws<InvalidOperationException>(() => b.Encode("hi", addBos: true));

        // generation still ends where the file with the key ends it: its eos is found by its text
        Assert.NotNull(a.EosId);
        Assert.Contains(a.EosId!.Value, b.EndOfGeneration);
        Assert.Subset(new HashSet<int>(a.EndOfGeneration), new HashSet<int>(b.EndOfGeneration));
        Assert.Superset(new HashSet<int>(a.EndOfGeneration), new HashSet<int>(b.EndOfGeneration));
    }

    [Fact]
    public void EndOfGenerationHoldsTheEndOfTurnTokensOfEachFormat()
    {
        var qwen = new BpeTokenizer(Vocab("qwen2_5"));
        Assert.Contains(qwen.TokenToId("<|im_end|>")!.Value, qwen.EndOfGeneration);
        Assert.Contains(qwen.TokenToId("<|endoftext|>")!.Value, qwen.EndOfGeneration);
        var llama = new BpeTokenizer(Vocab("llama3_1"));
        foreach (string t in new[] { "<|eot_id|>", "<|end_of_text|>" })
            Assert.Contains(llama.TokenToId(t)!.Value, llama.EndOfGeneration);
        Assert.DoesNotContain(llama.TokenToId("<|begin_of_text|>")!.Value, llama.EndOfGeneration);
        var ds = new BpeTokenizer(Vocab("deepseek_v3"));
        Assert.Contains(ds.TokenToId("<｜end▁of▁sentence｜>")!.Value, ds.EndOfGeneration);
        Assert.DoesNotContain(ds.TokenToId("<｜begin▁of▁sentence｜>")!.Value, ds.EndOfGeneration);
    }

    [Fact]
    public void TokenizeVerbWorksWithoutTheKeysAndRefusesBosItCannotAdd()
    {
        var data = Vocab("r1_distill_qwen");
        string lacking = WriteVocabGguf(data, "lacking.gguf", Dropped("both"));
        const string text = "<｜User｜>What is 17+25?<｜Assistant｜><think>\n";
        var r = CliRunner.Run("tokenize", "--model", lacking, "--text", text);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(new BpeTokenizer(data).Encode(text), JsonSerializer.Deserialize<int[]>(r.Stdout));

        var bos = CliRunner.Run("tokenize", "--model", lacking, "--text", text, "--bos");
        Assert.Equal(1, bos.ExitCode);
        Assert.Equal("", bos.Stdout);
        string error = bos.Stderr.Trim();
        Assert.StartsWith("error: ", error);
        Assert.Contains("bos_token_id", error);
        Assert.DoesNotContain('\n', error);
    }

    public static TheoryData<string> Architectures => ["qwen2", "llama", "deepseek2"];

    // A tiny model whose every position gives the same logits (all token embeddings equal row 0, so every position
    // sees the same inputs) with the end-of-sentence row of the output head set to twice the winning row: greedy
    // decoding writes end-of-sentence first. With and without eos_token_id generation stops there; with the token's
    // text changed as well it cannot be found, and generation runs to its limit (the control).
    [Theory]
    [MemberData(nameof(Architectures))]
    public void GenerationStopsWithoutEosTokenId(string arch)
    {
        string random = Path.Combine(_dir, "random.gguf");
        Synthesizer.Write(Synthesizer.FindPreset(arch, "tiny"), GgmlType.F32, 3, random);
        string flat = Path.Combine(_dir, "flat.gguf");
        Rewrite(random, flat, [], (name, bytes) => name == "token_embd.weight" ? RepeatRow0(bytes, RowFloats(random, name)) : bytes);
        int top, eos;
        using (var lm = LoadedModel.Load(flat, threads: 1))
        {
            eos = lm.Tokenizer.EosId!.Value;
            using var session = new InferenceSession(lm.Model, 32);
            top = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(session.Evaluate([5, 6, 7]));
        }
        Assert.NotEqual(eos, top);
        string stops = Path.Combine(_dir, "stops.gguf");
        Rewrite(flat, stops, [], (name, bytes) => name == "output.weight" ? CopyRowScaled(bytes, RowFloats(flat, name), top, eos, 2f) : bytes);

        string lacking = Path.Combine(_dir, "lacking.gguf");
        Rewrite(stops, lacking, Dropped("both"), (_, bytes) => bytes);
        Assert.Equal([eos], Generate(stops));
        Assert.Equal([eos], Generate(lacking));
        var cli = CliRunner.Run("generate", "--model", lacking, "--prompt", "hi", "--temperature", "0", "--max-tokens", "8", "-t", "1");
        Assert.True(cli.ExitCode == 0, cli.Stderr);

        string renamed = Path.Combine(_dir, "renamed.gguf");
        Rewrite(lacking, renamed, [], (_, bytes) => bytes, tokens => tokens[eos] = "<｜not▁an▁end｜>");
        Assert.Equal(8, Generate(renamed).Length);
    }

    private static int[] Generate(string path)
    {
        using var lm = LoadedModel.Load(path, threads: 1);
        using var session = new InferenceSession(lm.Model, 32);
        return session.Generate([5, 6, 7], new Sampler(SamplingParams.Greedy), 8, lm.IsEndOfGeneration).ToArray();
    }

    private static int RowFloats(string path, string tensor)
    {
        using var f = GgufFile.Open(path);
        var t = f.GetTensor(tensor);
        Assert.Equal(GgmlType.F32, t.Type);
        return checked((int)t.Shape[0]);
    }

    private static byte[] RepeatRow0(byte[] bytes, int rowFloats)
    {
        int rowBytes = rowFloats * sizeof(float);
        for (int o = rowBytes; o < bytes.Length; o += rowBytes) Buffer.BlockCopy(bytes, 0, bytes, o, rowBytes);
        return bytes;
    }

    private static byte[] CopyRowScaled(byte[] bytes, int rowFloats, int from, int to, float scale)
    {
        var rows = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
        for (int i = 0; i < rowFloats; i++) rows[to * rowFloats + i] = rows[from * rowFloats + i] * scale;
        return bytes;
    }

    /// <summary>Copies a GGUF with some keys left out, tensors passed through <paramref name="tensor"/>, and the token list edited.</summary>
    private static void Rewrite(string src, string dst, string[] drop, Func<string, byte[], byte[]> tensor, Action<string[]>? editTokens = null)
    {
        using var f = GgufFile.Open(src);
        var w = new GgufWriter(f.Version, f.Alignment);
        foreach (var (k, v) in f.Metadata)
        {
            if (drop.Contains(k)) continue;
            if (k == "tokenizer.ggml.tokens" && editTokens is not null)
            {
                string[] tokens = [.. (string[])v.Value];
                editTokens(tokens);
                w.SetMetadata(k, GgufValue.Of(tokens));
            }
            else w.SetMetadata(k, v);
        }
        foreach (var t in f.Tensors) w.AddTensor(t.Name, t.Type, t.Shape, tensor(t.Name, f.TensorBytes(t).ToArray()));
        w.Write(dst);
    }
}
