// Bad and incomplete checkpoints: each is a one-line CheckpointException naming the file (and the tensor) at fault,
// raised before any output is written; the CLI turns it into one line on stderr and exit code 1.
using System.Text.Json.Nodes;
using R1Sharp.Conversion;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.Conversion;

public sealed class ConvertErrorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"r1sharp-badckpt-{Guid.NewGuid():N}");
    private readonly string _out;

    public ConvertErrorTests()
    {
        _out = _dir + ".gguf";
        // a small Llama: the tensor checks come before the tokenizer is read
        HfSynthesizer.Write(Synthesizer.FindPreset("llama", "tiny"), _dir, new HfSynthOptions { Seed = 3, VocabSize = 256, MaxShardBytes = 40_000 });
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
        File.Delete(_out);
    }

    private CheckpointException Fails()
    {
        var e = Assert.Throws<CheckpointException>(() => HfConverter.Convert(_dir, _out, new ConvertOptions(QuantizeTarget.Parse("f16"))));
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(_out), "an output was written");
        return e;
    }

    private string Shard(int i) => Directory.GetFiles(_dir, "model-*.safetensors").Order().ElementAt(i);

    private JsonObject Index => JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "model.safetensors.index.json")))!.AsObject();

    [Fact]
    public void MissingShardIsNamed()
    {
        string shard = Shard(1);
        File.Delete(shard);
        var e = Fails();
        Assert.Contains(Path.GetFileName(shard), e.Message);
        Assert.Contains("missing shard", e.Message);
    }

    [Fact]
    public void TensorTheIndexPromisesButNoShardHoldsIsNamed()
    {
        var index = Index;
        index["weight_map"]!["model.layers.0.mlp.extra.weight"] = Path.GetFileName(Shard(0));
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"), index.ToJsonString());
        var e = Fails();
        Assert.Contains("model.layers.0.mlp.extra.weight", e.Message);
        Assert.Contains(Path.GetFileName(Shard(0)), e.Message);
    }

    [Fact]
    public void TruncatedShardIsNamed()
    {
        string shard = Shard(2);
        using (var f = new FileStream(shard, FileMode.Open)) f.SetLength(f.Length - 100);
        var e = Fails();
        Assert.Contains(Path.GetFileName(shard), e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void ShapeThatDisagreesWithConfigIsNamed()
    {
        string cfg = Path.Combine(_dir, "config.json");
        var c = JsonNode.Parse(File.ReadAllText(cfg))!.AsObject();
        c["intermediate_size"] = 100;
        File.WriteAllText(cfg, c.ToJsonString());
        var e = Fails();
        Assert.Contains("mlp.", e.Message);
        Assert.Contains("config.json implies", e.Message);
        Assert.Contains(".safetensors", e.Message);
    }

    [Fact]
    public void UnreadableDtypeIsNamed()
    {
        // rewrite the first shard with one tensor stored as I32
        string shard = Shard(0);
        using var st = SafetensorsFile.Open(shard);
        var tensors = st.Tensors.Select(t => (t.Name, t.Name == st.Tensors[0].Name ? SafetensorsDType.I32 : t.DType, t.Shape)).ToList();
        var header = SafetensorsHeader.Build(tensors);
        long data = tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b) * SafetensorsHeader.ElementBytes(t.Item2));
        st.Dispose();
        File.WriteAllBytes(shard, header.Concat(new byte[data]).ToArray());
        var e = Fails();
        Assert.Contains("is I32", e.Message);
        Assert.Contains(Path.GetFileName(shard), e.Message);
    }

    [Fact]
    public void UnknownTensorIsNamed()
    {
        File.Delete(Path.Combine(_dir, "model.safetensors.index.json"));
        var header = SafetensorsHeader.Build([("model.layers.0.self_attn.rotary_extra.weight", SafetensorsDType.F32, [4])]);
        File.WriteAllBytes(Path.Combine(_dir, "model-extra.safetensors"), header.Concat(new byte[16]).ToArray());
        var e = Fails();
        Assert.Contains("rotary_extra", e.Message);
        Assert.Contains("model-extra.safetensors", e.Message);
    }

    [Fact]
    public void UnsupportedArchitectureAndMissingConfigAreNamed()
    {
        string cfg = Path.Combine(_dir, "config.json");
        var c = JsonNode.Parse(File.ReadAllText(cfg))!.AsObject();
        c["architectures"] = new JsonArray("GPT2LMHeadModel");
        File.WriteAllText(cfg, c.ToJsonString());
        Assert.Contains("GPT2LMHeadModel is not supported", Fails().Message);
        File.Delete(cfg);
        Assert.Contains("config.json: missing", Fails().Message);
    }

    [Fact]
    public void CliPrintsOneLineAndExitsWithOne()
    {
        File.Delete(Shard(0));
        var r = CliRunner.Run("convert", _dir, _out, "--type", "q8_0");
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("missing shard", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}
