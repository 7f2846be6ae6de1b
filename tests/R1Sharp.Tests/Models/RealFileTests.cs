// Files reproducing popular R1 GGUFs from public llama.cpp load logs (tests/RealFiles): the real layout's tensor
// count, type mix, parameter count and size are the logs'; a small file with the real keys, value types, values and
// tokenizer arrays is the log line for line, and `info`, `tokenize` and the chat template work on it.
// (Its logits against llama.cpp's: R1Sharp.Oracle.Tests/RealFileOracleTests.)
using System.Text.Json;
using R1Sharp.Chat;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.RealFiles;
using R1Sharp.Tensors;
using R1Sharp.Tests.Cli;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests.Models;

public sealed class RealFileTests : IClassFixture<RealFileTests.Scratch>
{
    public sealed class Scratch : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("r1sharp-realfiles-").FullName;

        public void Dispose() => Directory.Delete(Dir, true);
    }

    private readonly Scratch _scratch;

    public RealFileTests(Scratch scratch) => _scratch = scratch;

    public static TheoryData<string> Files => new(RealFile.All.Keys);

    private static Dictionary<string, int> CountByType(IEnumerable<GgmlType> types) =>
        types.GroupBy(GgmlTypeInfo.Name).ToDictionary(g => g.Key, g => g.Count());

    private static Dictionary<string, int> Lower(IReadOnlyDictionary<string, int> counts) =>
        counts.ToDictionary(kv => kv.Key.ToLowerInvariant(), kv => kv.Value);

    [Theory]
    [MemberData(nameof(Files))]
    public void FullSizeLayout_HasTheLogsTensorsTypesParametersAndSize(string name)
    {
        var f = RealFile.All[name];
        var tensors = f.Tensors(f.Full);
        Assert.Equal(f.Dump.TensorCount, tensors.Count);
        Assert.Equal(Lower(f.Dump.TypeCounts), CountByType(tensors.Select(t => t.Type)));

        var entries = tensors.Select(t => new TensorEntry(t.Tensor.Name, t.Tensor.Shape, t.Type)).ToList();
        long elements = entries.Sum(t => t.Elements), bytes = entries.Sum(t => t.Bytes);
        // llama.cpp prints the sums of the tensors' elements and bytes: "%.2f B" and "%.2f GiB (%.2f BPW)"
        Assert.Equal(f.Dump.Printed["model params"], $"{elements * 1e-9:F2} B");
        string size = f.Dump.Printed.GetValueOrDefault("file size") ?? f.Dump.Printed["model size"];
        Assert.Equal(size, $"{bytes / 1024.0 / 1024.0 / 1024.0:F2} GiB ({bytes * 8.0 / elements:F2} BPW)");

        var info = ModelInfo.From(f.Metadata(f.Full).ToDictionary(kv => kv.Key, kv => kv.Value), entries);
        Assert.Equal(f.Dump["general.architecture"].Value, info.Architecture);
        Assert.Equal(elements, info.TotalParameters);
        Assert.Equal(elements, info.ActiveParameters);
        Assert.Equal(bytes, info.WeightBytes);
    }

    /// <summary>
    /// DeepSeek-R1 UD-IQ1_S's log (https://github.com/gpustack/gpustack/issues/1107): 1025 tensors, f32 361, q4_K 190,
    /// q5_K 116, q6_K 184, iq2_xxs 6, iq1_s 168. The R1 layout of that conversion (attn_kv_b, no MTP layer) in the
    /// mix, and in its K-quant stand-in, whose Q2_K tensors are the IQ1_S and IQ2_XXS ones.
    /// </summary>
    [Fact]
    public void UdIq1SMix_OnTheR1Layout_HasTheLogsTypeCounts()
    {
        var spec = Synthesizer.FindPreset("deepseek2", "deepseek-r1") with { SplitKvB = false, MtpLayers = 0 };
        var tensors = Synthesizer.Typed(Synthesizer.Plan(spec, 129280), WeightMix.UdIq1SKQuants, spec);
        Assert.Equal(1025, tensors.Count);
        Assert.Equal(new Dictionary<string, int> { ["f32"] = 361, ["q4_k"] = 190, ["q5_k"] = 116, ["q6_k"] = 184, ["q2_k"] = 6 + 168 },
            CountByType(tensors.Select(t => t.Type)));
        var early = tensors.Where(t => t.Tensor.Name.Contains("ffn_down_exps", StringComparison.Ordinal)).Take(WeightMix.UdIq2DownLayers);
        Assert.Equal(["blk.3.ffn_down_exps.weight", "blk.8.ffn_down_exps.weight"], early.Select(t => t.Tensor.Name).Where((_, i) => i is 0 or 5));
        var real = Synthesizer.Typed(Synthesizer.Plan(spec, 129280), WeightMix.Parse("ud-iq1_s"), spec);
        Assert.Equal(new Dictionary<string, int> { ["f32"] = 361, ["q4_k"] = 190, ["q5_k"] = 116, ["q6_k"] = 184, ["iq2_xxs"] = 6, ["iq1_s"] = 168 },
            CountByType(real.Select(t => t.Type)));
        Assert.Equal(early.Select(t => t.Tensor.Name), real.Where(t => t.Type == GgmlType.IQ2_XXS).Select(t => t.Tensor.Name));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void SmallFile_IsTheLogKeyForKey(string name)
    {
        var f = RealFile.All[name];
        using var g = GgufFile.Open(f.WriteSmall(_scratch.Dir));
        Assert.Equal(3u, g.Version);
        Assert.Equal(f.Dump.KvCount, g.Metadata.Count);
        var dims = f.Dimensions(f.Small);
        int i = 0;
        foreach (var (key, value) in g.Metadata)
        {
            var kv = f.Dump.Kvs[i++];
            Assert.Equal(kv.Key, key);
            var (type, text) = RealFileDump.Render(value);
            Assert.Equal(kv.Type, type);
            if (dims.TryGetValue(key, out var small)) Assert.Equal(small.AsInt64(), value.AsInt64());
            else Assert.True(kv.Value == text, $"{key}: the log prints {kv.Value}, the file {text}");
        }
        // the real layout's names and types, in small shapes
        Assert.Equal(f.Tensors(f.Full).Select(t => (t.Tensor.Name, t.Type)), g.Tensors.Select(t => (t.Name, t.Type)));
        Assert.Equal(Lower(f.Dump.TypeCounts), CountByType(g.Tensors.Select(t => t.Type)));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Info_NamesTheArchitectureParametersAndTypes(string name)
    {
        var f = RealFile.All[name];
        string path = f.WriteSmall(_scratch.Dir);
        var r = CliRunner.Run("info", "--model", path, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(r.Stdout);
        var root = json.RootElement;
        Assert.Equal(f.Dump["general.architecture"].Value, root.GetProperty("architecture").GetString());
        Assert.Equal(f.Dump["general.name"].Value, root.GetProperty("name").GetString());
        Assert.Equal(f.Small.Layers, root.GetProperty("layers").GetInt32());
        long elements;
        using (var g = GgufFile.Open(path)) elements = g.Tensors.Sum(t => t.ElementCount);
        Assert.Equal(elements, root.GetProperty("parameters").GetInt64());
        var types = root.GetProperty("bytes_by_type").EnumerateObject().Select(p => p.Name).Order();
        Assert.Equal(f.Dump.TypeCounts.Keys.Select(k => k.ToLowerInvariant()).Order(), types);
        var text = CliRunner.Run("info", "--model", path);
        Assert.Contains($"architecture   {f.Dump["general.architecture"].Value} ({f.Dump["general.name"].Value})", text.Stdout);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Tokenize_AndTheChatTemplate_UseTheRealVocabulary(string name)
    {
        var f = RealFile.All[name];
        string path = f.WriteSmall(_scratch.Dir);
        using var g = GgufFile.Open(path);
        var data = TokenizerData.FromGgufMetadata(g.Metadata);
        var tokenizer = new BpeTokenizer(data);
        Assert.Equal(f.Dump.Printed["BOS token"], $"{data.BosId} '{data.Tokens[data.BosId!.Value]}'");
        Assert.Equal(f.Dump.Printed["EOS token"], $"{data.EosId} '{data.Tokens[data.EosId!.Value]}'");

        Assert.Equal(ChatTemplateKind.R1, ChatTemplates.Detect(data.ChatTemplate, t => tokenizer.TokenToId(t) is not null));
        string prompt = ChatTemplates.Render(ChatTemplateKind.R1, [ChatMessage.User("What is 17+25?")], data.Tokens[data.BosId.Value], addGenerationPrompt: true);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>What is 17+25?<｜Assistant｜><think>\n", prompt);
        int[] ids = tokenizer.Encode(prompt);
        int user = tokenizer.TokenToId(R1Vocab.User)!.Value, assistant = tokenizer.TokenToId(R1Vocab.Assistant)!.Value;
        int think = tokenizer.TokenToId(R1Vocab.ThinkStart)!.Value;
        Assert.Equal([data.BosId.Value, user], ids[..2]);
        Assert.Equal([assistant, think], ids[^3..^1]);
        Assert.Equal("\n", tokenizer.Decode(ids[^1..]));
        Assert.Equal("What is 17+25?", tokenizer.Decode(ids[2..^3]));
        // the same ids from the tokenizer.json the arrays came from, and from the CLI
        Assert.Equal(ids, new BpeTokenizer(f.Vocab).Encode(prompt));
        var r = CliRunner.Run("tokenize", "--model", path, "--text", prompt);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(ids, JsonSerializer.Deserialize<int[]>(r.Stdout));
    }
}
