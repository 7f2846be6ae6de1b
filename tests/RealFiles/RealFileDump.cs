// A public llama.cpp load log of a real GGUF file (tests/RealFiles/*.txt): every metadata key with its type and
// printed value, the tensor count by type, and what llama.cpp printed about the model; and the rendering of a
// metadata value as llama_model_loader prints it, so a file can be held to the log line by line.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using R1Sharp.Formats;

namespace R1Sharp.RealFiles;

public sealed partial class RealFileDump
{
    /// <summary>One "- kv N: KEY TYPE = VALUE" line.</summary>
    public sealed record Kv(int Index, string Key, string Type, string Value);

    public required string Name { get; init; }
    public required int KvCount { get; init; }
    public required int TensorCount { get; init; }
    public required IReadOnlyList<Kv> Kvs { get; init; }

    /// <summary>"- type q4_K: 169 tensors" lines, by ggml's type name.</summary>
    public required IReadOnlyDictionary<string, int> TypeCounts { get; init; }

    /// <summary>print_info / llm_load_print_meta lines: "model params" → "1.78 B", "BOS token" → "151646 '…'".</summary>
    public required IReadOnlyDictionary<string, string> Printed { get; init; }

    public Kv this[string key] => Kvs.Single(k => k.Key == key);

    /// <summary>Reads tests/RealFiles/<paramref name="name"/>.txt.</summary>
    public static RealFileDump Load(string name)
    {
        string path = R1Sharp.TestSupport.RepoPaths.Get($"tests/RealFiles/{name}.txt");
        int? kvCount = null, tensorCount = null;
        var kvs = new List<Kv>();
        var types = new Dictionary<string, int>(StringComparer.Ordinal);
        var printed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            Match m;
            if ((m = HeaderLine().Match(line)).Success)
            {
                kvCount = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                tensorCount = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            }
            else if ((m = KvLine().Match(line)).Success)
                kvs.Add(new(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value, m.Groups[3].Value, m.Groups[4].Value));
            else if ((m = TypeLine().Match(line)).Success)
                types[m.Groups[1].Value] = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            else if ((m = PrintLine().Match(line)).Success)
                printed[m.Groups[1].Value] = m.Groups[2].Value;
            else
                throw new InvalidDataException($"{path}: unrecognized line: {line}");
        }
        for (int i = 0; i < kvs.Count; i++)
            if (kvs[i].Index != i) throw new InvalidDataException($"{path}: kv {kvs[i].Index} is line {i} of the dump");
        return new RealFileDump
        {
            Name = name,
            KvCount = kvCount ?? throw new InvalidDataException($"{path}: no 'loaded meta data' line"),
            TensorCount = tensorCount!.Value,
            Kvs = kvs,
            TypeCounts = types,
            Printed = printed,
        };
    }

    [GeneratedRegex(@"^llama_model_loader: loaded meta data with (\d+) key-value pairs and (\d+) tensors")]
    private static partial Regex HeaderLine();

    [GeneratedRegex(@"^llama_model_loader: - kv\s+(\d+):\s+(\S+)\s+(\S+)\s+= ?(.*)$")]
    private static partial Regex KvLine();

    [GeneratedRegex(@"^llama_model_loader: - type\s+(\S+):\s+(\d+) tensors$")]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^(?:print_info|llm_load_print_meta): (.+?)\s+= (.*?)\s*$")]
    private static partial Regex PrintLine();

    /// <summary>gguf_type_name of a value type.</summary>
    public static string TypeName(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => "u8", GgufValueType.Int8 => "i8", GgufValueType.UInt16 => "u16", GgufValueType.Int16 => "i16",
        GgufValueType.UInt32 => "u32", GgufValueType.Int32 => "i32", GgufValueType.Float32 => "f32", GgufValueType.Bool => "bool",
        GgufValueType.String => "str", GgufValueType.Array => "arr", GgufValueType.UInt64 => "u64", GgufValueType.Int64 => "i64",
        _ => "f64",
    };

    /// <summary>
    /// The type and value llama_model_loader prints for <paramref name="v"/>: arrays as arr[ELEMENT,N] with their items
    /// (strings quoted, backslash and quote escaped), scalars as C++'s std::to_string (floats with six decimals), the
    /// text cut to 37 bytes and "..." past 40 bytes, then newlines written as \n.
    /// </summary>
    public static (string Type, string Value) Render(GgufValue v)
    {
        const int MaxValueLen = 40;
        string type = v.Type == GgufValueType.Array ? $"arr[{TypeName(v.ElementType)},{v.ArrayLength}]" : TypeName(v.Type);
        var text = new StringBuilder();
        if (v.Value is Array a)
        {
            text.Append('[');
            for (int i = 0; i < a.Length && Encoding.UTF8.GetByteCount(text.ToString()) <= MaxValueLen; i++)
            {
                object item = a.GetValue(i)!;
                text.Append(item is string s ? $"\"{s.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"" : Scalar(item));
                if (i < a.Length - 1) text.Append(", ");
            }
            if (Encoding.UTF8.GetByteCount(text.ToString()) <= MaxValueLen) text.Append(']');
        }
        else
        {
            text.Append(Scalar(v.Value));
        }
        byte[] bytes = Encoding.UTF8.GetBytes(text.ToString());
        string value = bytes.Length > MaxValueLen ? Encoding.UTF8.GetString(bytes, 0, MaxValueLen - 3) + "..." : text.ToString();
        return (type, value.Replace("\n", "\\n"));
    }

    private static string Scalar(object x) => x switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        float f => ((double)f).ToString("F6", CultureInfo.InvariantCulture),
        double d => d.ToString("F6", CultureInfo.InvariantCulture),
        _ => Convert.ToString(x, CultureInfo.InvariantCulture)!,
    };
}
