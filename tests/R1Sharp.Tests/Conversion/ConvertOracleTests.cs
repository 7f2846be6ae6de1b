// `convert` against llama.cpp's own converter (convert_hf_to_gguf.py at llama.cpp 305ba519ab61, run on the same
// fixture folders with Debian's python3-torch/numpy; its GGUFs are summarized in testdata/reference/*.json by
// gguf-py's reader: every metadata key, every tensor's type, ne, SHA-256 of its bytes and value sums). Ours must be
// the same file in all but the listed, intended differences.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Conversion;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Conversion;

public sealed class ConvertOracleTests(ITestOutputHelper output)
{
    /// <summary>(fixture, type) pairs the reference converter was run on.</summary>
    public static TheoryData<string, string> References => new()
    {
        { "r1-distill-qwen-tiny", "f16" }, { "r1-distill-qwen-tiny", "bf16" }, { "r1-distill-qwen-tiny", "q8_0" },
        { "r1-distill-llama-tiny", "f16" }, { "r1-distill-llama-tiny", "q8_0" },
        { "deepseek-v3-tiny", "f16" }, { "deepseek-v3-tiny", "q8_0" }, { "deepseek-v2-lite-tiny", "f16" },
    };

    [Theory]
    [MemberData(nameof(References))]
    public void ConvertedFileMatchesLlamaCppsConverter(string fixture, string type)
    {
        // llama.cpp's converter leaves out DeepSeek's MTP layer; --no-mtp does the same (the MTP test covers the rest)
        var ours = ConvertAndDump(fixture, type, mtp: false);
        var reference = Reference(fixture, type);
        Compare(reference, ours, ignoreKeys: []);
    }

    /// <summary>With the MTP layer kept, the file is llama.cpp's plus exactly the MTP block: blk.3.* (the layer and its
    /// blk.3.nextn.* tensors), block_count 4 instead of 3, deepseek2.nextn_predict_layers = 1, and the size label
    /// of the larger parameter count.</summary>
    [Fact]
    public void DeepSeekMtpLayerIsTheOnlyDifference()
    {
        var ours = ConvertAndDump("deepseek-v3-tiny", "f16", mtp: true);
        var reference = Reference("deepseek-v3-tiny", "f16");
        var extra = ours.Tensors.Keys.Except(reference.Tensors.Keys).ToList();
        Assert.NotEmpty(extra);
        Assert.All(extra, n => Assert.StartsWith("blk.3.", n));
        foreach (string n in new[] { "eh_proj", "enorm", "hnorm", "embed_tokens", "shared_head_head", "shared_head_norm" })
            Assert.Contains($"blk.3.nextn.{n}.weight", extra);
        Assert.Contains("blk.3.ffn_gate_exps.weight", extra);
        Assert.Equal(4u, Convert.ToUInt32(ours.Metadata["deepseek2.block_count"].Value.GetDouble()));
        Assert.Equal(1u, Convert.ToUInt32(ours.Metadata["deepseek2.nextn_predict_layers"].Value.GetDouble()));
        foreach (string n in extra) ours.Tensors.Remove(n);
        ours.Metadata.Remove("deepseek2.nextn_predict_layers");
        Compare(reference, ours, ignoreKeys: ["deepseek2.block_count", "general.size_label"]);
    }

    /// <summary>The FP8 checkpoint (block-scaled float8_e4m3fn) holds the same numbers as the BF16 one, so its
    /// conversion is llama.cpp's conversion of the BF16 checkpoint, tensor for tensor, bit for bit.</summary>
    [Theory]
    [InlineData("f16")]
    [InlineData("q8_0")]
    public void Fp8CheckpointConvertsToTheGgufOfItsBf16Twin(string type)
    {
        var ours = ConvertAndDump("deepseek-v3-tiny-fp8", type, mtp: false);
        var reference = Reference("deepseek-v3-tiny", type);
        // the folder name feeds general.name/basename/finetune: those differ by design
        Compare(reference, ours, ignoreKeys: ["general.name", "general.basename", "general.finetune", "general.version", "general.size_label"]);
    }

    private sealed record Dump(Dictionary<string, (string Type, JsonElement Value)> Metadata, List<string> KeyOrder,
        Dictionary<string, JsonObject> Tensors, List<string> TensorOrder);

    private void Compare(Dump reference, Dump ours, string[] ignoreKeys)
    {
        var problems = new List<string>();
        foreach (string k in reference.Metadata.Keys.Union(ours.Metadata.Keys).Except(ignoreKeys))
        {
            if (!ours.Metadata.TryGetValue(k, out var o)) { problems.Add($"missing key {k}"); continue; }
            if (!reference.Metadata.TryGetValue(k, out var r)) { problems.Add($"extra key {k} = {o.Value}"); continue; }
            if (r.Type != o.Type || !SameValue(r.Value, o.Value)) problems.Add($"key {k}: {r.Type} {Short(r.Value)} expected, {o.Type} {Short(o.Value)} written");
        }
        var keyOrder = reference.KeyOrder.Where(k => ours.Metadata.ContainsKey(k) && !ignoreKeys.Contains(k)).ToList();
        if (!keyOrder.SequenceEqual(ours.KeyOrder.Where(k => reference.Metadata.ContainsKey(k) && !ignoreKeys.Contains(k))))
            problems.Add("metadata keys in another order");
        foreach (string n in reference.Tensors.Keys.Union(ours.Tensors.Keys))
        {
            if (!ours.Tensors.TryGetValue(n, out var o)) { problems.Add($"missing tensor {n}"); continue; }
            if (!reference.Tensors.TryGetValue(n, out var r)) { problems.Add($"extra tensor {n}"); continue; }
            if ((string?)r["type"] != (string?)o["type"] || r["shape"]!.ToJsonString() != o["shape"]!.ToJsonString())
                problems.Add($"tensor {n}: {r["type"]} {r["shape"]!.ToJsonString()} expected, {o["type"]} {o["shape"]!.ToJsonString()} written");
            else if ((string?)r["sha256"] != (string?)o["sha256"])
                problems.Add($"tensor {n}: other bytes (sum {(double)r["sum"]!} vs {(double)o["sum"]!}, sumsq {(double)r["sumsq"]!} vs {(double)o["sumsq"]!})");
        }
        if (!reference.TensorOrder.Where(ours.Tensors.ContainsKey).SequenceEqual(ours.TensorOrder.Where(reference.Tensors.ContainsKey)))
            problems.Add("tensors in another order");
        foreach (string p in problems) output.WriteLine(p);
        Assert.True(problems.Count == 0, $"{problems.Count} differences from llama.cpp's converter; first: {problems.FirstOrDefault()}");
    }

    private static string Short(JsonElement v) => v.ToString() is { Length: > 80 } s ? s[..80] + "..." : v.ToString();

    private static bool SameValue(JsonElement a, JsonElement b) =>
        a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number
            ? (float)a.GetDouble() == (float)b.GetDouble()
            : a.ToString() == b.ToString();

    private static Dump Reference(string fixture, string type)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Conversion", "testdata", "reference", $"{fixture}.{type}.json");
        var root = JsonNode.Parse(File.ReadAllText(path))!;
        var md = new Dictionary<string, (string, JsonElement)>();
        var order = new List<string>();
        foreach (var m in root["metadata"]!.AsArray())
        {
            string key = (string)m!["key"]!, t = (string)m["type"]!;
            JsonElement value = t == "ARRAY"
                ? JsonSerializer.SerializeToElement($"{m["element_type"]}[{m["count"]}] {m["sha256"]}")
                : JsonSerializer.SerializeToElement(m["value"]);
            md[key] = (t, value);
            order.Add(key);
        }
        var tensors = new Dictionary<string, JsonObject>();
        var torder = new List<string>();
        foreach (var t in root["tensors"]!.AsArray())
        {
            tensors[(string)t!["name"]!] = t.AsObject();
            torder.Add((string)t["name"]!);
        }
        return new Dump(md, order, tensors, torder);
    }

    /// <summary>Converts a fixture with ours and summarizes the GGUF as the reference summaries are made.</summary>
    private Dump ConvertAndDump(string fixture, string type, bool mtp)
    {
        string dir = HfFixtures.Get(fixture);
        string outPath = Path.Combine(Path.GetTempPath(), $"r1sharp-convert-{Guid.NewGuid():N}.gguf");
        try
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var result = HfConverter.Convert(dir, outPath, new ConvertOptions(QuantizeTarget.Parse(type), Mtp: mtp));
            output.WriteLine($"{fixture} -> {type}: {result.Tensors} tensors, pre {result.Pre}, {sw.Elapsed.TotalSeconds:F1} s");
            return Summarize(outPath);
        }
        finally
        {
            File.Delete(outPath);
        }
    }

    private static unsafe Dump Summarize(string path)
    {
        using var f = GgufFile.Open(path);
        var md = new Dictionary<string, (string, JsonElement)>();
        var order = new List<string>();
        foreach (var (key, v) in f.Metadata)
        {
            string t = v.Type.ToString().ToUpperInvariant();
            JsonElement value = v.Value is Array a
                ? JsonSerializer.SerializeToElement($"{v.ElementType.ToString().ToUpperInvariant()}[{a.Length}] {ArrayHash(a)}")
                : v.Value switch
                {
                    string s => JsonSerializer.SerializeToElement(s),
                    bool b => JsonSerializer.SerializeToElement(b),
                    float x => JsonSerializer.SerializeToElement((double)x),
                    _ => JsonSerializer.SerializeToElement(Convert.ToDouble(v.Value, System.Globalization.CultureInfo.InvariantCulture)),
                };
            md[key] = (t, value);
            order.Add(key);
        }
        var tensors = new Dictionary<string, JsonObject>();
        var torder = new List<string>();
        foreach (var t in f.Tensors)
        {
            var bytes = new ReadOnlySpan<byte>(f.TensorPointer(t), checked((int)t.ByteSize));
            int cols = (int)t.Shape[0];
            var row = new float[cols];
            double sum = 0, sumsq = 0;
            long rowBytes = t.ByteSize / t.Rows;
            for (long r = 0; r < t.Rows; r++)
            {
                Quantization.DequantizeRow(t.Type, bytes.Slice((int)(r * rowBytes), (int)rowBytes), row);
                foreach (float x in row) { sum += x; sumsq += (double)x * x; }
            }
            tensors[t.Name] = new JsonObject
            {
                ["type"] = t.Type.ToString().ToUpperInvariant(),
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(bytes)),
                ["sum"] = sum, ["sumsq"] = sumsq,
            };
            torder.Add(t.Name);
        }
        return new Dump(md, order, tensors, torder);
    }

    /// <summary>As the reference summary hashes arrays: each element's text and a newline, in UTF-8.</summary>
    private static string ArrayHash(Array a)
    {
        var sb = new StringBuilder();
        foreach (object? x in a)
            sb.Append(x switch { bool b => b ? "true" : "false", _ => Convert.ToString(x, System.Globalization.CultureInfo.InvariantCulture) }).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }
}
