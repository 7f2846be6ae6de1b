// The header of a safetensors file (Hugging Face's weight format): an 8-byte little-endian length, that many bytes
// of JSON naming each tensor's dtype, shape and [begin, end) byte range in the data section that follows. Parsing is
// a pure function of the bytes, hardened as the GGUF reader is: bounded header length and JSON depth, known dtypes,
// sizes that match the shape, ranges inside the file that tile the data section without gaps or overlaps.
using System.Buffers.Binary;
using System.Text.Json;

namespace R1Sharp.Formats;

/// <summary>Element types of safetensors, with their names as the format writes them.</summary>
public enum SafetensorsDType
{
    Bool, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64,
}

/// <summary>One tensor of the header.</summary>
/// <param name="Shape">PyTorch order: the last dimension is the contiguous one ([out, in] for a linear weight).</param>
/// <param name="Begin">Byte offset of the first element, relative to the start of the data section.</param>
/// <param name="End">Byte offset one past the last element, relative to the start of the data section.</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));

    public long ByteSize => End - Begin;

    public override string ToString() => $"{Name} {DType} [{string.Join(", ", Shape)}]";
}

/// <summary>A safetensors file that is malformed or truncated; the message names the file and, where there is one, the tensor.</summary>
public sealed class SafetensorsFormatException(string message) : Exception(message);

public sealed class SafetensorsHeader
{
    /// <summary>Largest header accepted, as the reference implementation (100 MB): a forged length cannot make the
    /// reader allocate more.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Deepest JSON nesting accepted: the format needs three levels (file, tensor, shape).</summary>
    public const int MaxJsonDepth = 4;

    /// <summary>Most dimensions accepted for one tensor.</summary>
    public const int MaxDims = 8;

    /// <summary>Bytes before the JSON: its u64 length.</summary>
    public const int LengthBytes = 8;

    private SafetensorsHeader(long dataOffset, IReadOnlyList<SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        DataOffset = dataOffset;
        Tensors = tensors;
        Metadata = metadata;
        ByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Absolute file offset of the data section (8 + the header length).</summary>
    public long DataOffset { get; }

    /// <summary>The tensors, in the order of their data.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, SafetensorsTensorInfo> ByName { get; }

    /// <summary>The optional "__metadata__" string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static int ElementBytes(SafetensorsDType t) => t switch
    {
        SafetensorsDType.Bool or SafetensorsDType.U8 or SafetensorsDType.I8 or SafetensorsDType.F8_E5M2
            or SafetensorsDType.F8_E4M3 or SafetensorsDType.F8_E8M0 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        _ => 8,
    };

    /// <summary>The length field of a file's first 8 bytes, checked against the file size; returns the JSON length.</summary>
    public static long ReadLength(ReadOnlySpan<byte> first8, long fileLength, string file)
    {
        if (fileLength < LengthBytes || first8.Length < LengthBytes)
            throw new SafetensorsFormatException($"{file}: {fileLength} bytes is too short for a safetensors file (truncated?)");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(first8);
        if (n > MaxHeaderBytes)
            throw new SafetensorsFormatException($"{file}: header length {n} exceeds the limit of {MaxHeaderBytes} bytes (not a safetensors file?)");
        if ((long)n > fileLength - LengthBytes)
            throw new SafetensorsFormatException($"{file}: header length {n} runs past the end of the {fileLength}-byte file (truncated?)");
        if (n < 2)
            throw new SafetensorsFormatException($"{file}: header length {n} is too short for a JSON object");
        return (long)n;
    }

    /// <summary>Parses a whole file held in memory.</summary>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> file, string name = "<memory>")
    {
        long n = ReadLength(file, file.Length, name);
        return Parse(file.Slice(LengthBytes, (int)n), file.Length, name);
    }

    /// <summary>Parses the JSON header <paramref name="json"/> of a file of <paramref name="fileLength"/> bytes.</summary>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long fileLength, string file)
    {
        long dataOffset = LengthBytes + (long)json.Length;
        long dataLength = fileLength - dataOffset;
        if (dataLength < 0) throw new SafetensorsFormatException($"{file}: the header runs past the end of the file (truncated?)");
        if (json[0] != (byte)'{')
            throw new SafetensorsFormatException($"{file}: the header does not start with '{{' (not a safetensors file?)");

        var tensors = new List<SafetensorsTensorInfo>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxJsonDepth, CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            Expect(ref reader, JsonTokenType.StartObject, file, "the header");
            while (true)
            {
                Read(ref reader, file, "the header");
                if (reader.TokenType == JsonTokenType.EndObject) break;
                string name = reader.GetString()!;
                if (!names.Add(name)) throw new SafetensorsFormatException($"{file}: tensor {name} appears twice in the header");
                if (name == "__metadata__")
                {
                    ReadMetadata(ref reader, metadata, file);
                    continue;
                }
                tensors.Add(ReadTensor(ref reader, name, dataLength, file));
            }
            // Only padding (spaces, as writers align the data section) may follow the object.
            foreach (byte b in json[(int)reader.BytesConsumed..])
                if (b is not ((byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0))
                    throw new SafetensorsFormatException($"{file}: bytes after the header's JSON object");
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException($"{file}: the header is not valid JSON ({FirstLine(e.Message)})");
        }
        catch (InvalidOperationException e)
        {
            throw new SafetensorsFormatException($"{file}: the header is not valid JSON ({FirstLine(e.Message)})");
        }

        // The tensors' ranges must tile the data section: sorted by begin, each starts where the previous ended.
        tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long at = 0;
        foreach (var t in tensors)
        {
            if (t.Begin < at)
                throw new SafetensorsFormatException($"{file}: tensor {t.Name} [{t.Begin}, {t.End}) overlaps the tensor before it (which ends at {at})");
            if (t.Begin > at)
                throw new SafetensorsFormatException($"{file}: tensor {t.Name} starts at {t.Begin}, leaving a gap after byte {at} of the data section");
            at = t.End;
        }
        if (at != dataLength)
            throw new SafetensorsFormatException(at < dataLength
                ? $"{file}: {dataLength - at} bytes after the last tensor are not described by the header"
                : $"{file}: the data section is {dataLength} bytes, the header describes {at} (truncated?)");
        return new SafetensorsHeader(dataOffset, tensors, metadata);
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    private static void Read(ref Utf8JsonReader r, string file, string what)
    {
        if (!r.Read()) throw new SafetensorsFormatException($"{file}: {what} ends early (truncated JSON)");
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType type, string file, string what)
    {
        Read(ref r, file, what);
        if (r.TokenType != type) throw new SafetensorsFormatException($"{file}: {what}: expected {type}, found {r.TokenType}");
    }

    private static void ReadMetadata(ref Utf8JsonReader r, Dictionary<string, string> metadata, string file)
    {
        Expect(ref r, JsonTokenType.StartObject, file, "__metadata__");
        while (true)
        {
            Read(ref r, file, "__metadata__");
            if (r.TokenType == JsonTokenType.EndObject) return;
            string key = r.GetString()!;
            Expect(ref r, JsonTokenType.String, file, $"__metadata__.{key}");
            if (!metadata.TryAdd(key, r.GetString()!)) throw new SafetensorsFormatException($"{file}: __metadata__.{key} appears twice");
        }
    }

    private static SafetensorsTensorInfo ReadTensor(ref Utf8JsonReader r, string name, long dataLength, string file)
    {
        string what = $"tensor {name}";
        Expect(ref r, JsonTokenType.StartObject, file, what);
        SafetensorsDType? dtype = null;
        long[]? shape = null;
        long begin = -1, end = -1;
        while (true)
        {
            Read(ref r, file, what);
            if (r.TokenType == JsonTokenType.EndObject) break;
            string field = r.GetString()!;
            switch (field)
            {
                case "dtype":
                    Expect(ref r, JsonTokenType.String, file, $"{what}: dtype");
                    string d = r.GetString()!;
                    dtype = d switch
                    {
                        "BOOL" => SafetensorsDType.Bool, "U8" => SafetensorsDType.U8, "I8" => SafetensorsDType.I8,
                        "F8_E5M2" => SafetensorsDType.F8_E5M2, "F8_E4M3" => SafetensorsDType.F8_E4M3, "F8_E8M0" => SafetensorsDType.F8_E8M0,
                        "I16" => SafetensorsDType.I16, "U16" => SafetensorsDType.U16, "F16" => SafetensorsDType.F16,
                        "BF16" => SafetensorsDType.BF16, "I32" => SafetensorsDType.I32, "U32" => SafetensorsDType.U32,
                        "F32" => SafetensorsDType.F32, "F64" => SafetensorsDType.F64, "I64" => SafetensorsDType.I64, "U64" => SafetensorsDType.U64,
                        _ => throw new SafetensorsFormatException($"{file}: {what} has the unknown dtype '{d}'"),
                    };
                    break;
                case "shape":
                    Expect(ref r, JsonTokenType.StartArray, file, $"{what}: shape");
                    var dims = new List<long>();
                    while (true)
                    {
                        Read(ref r, file, $"{what}: shape");
                        if (r.TokenType == JsonTokenType.EndArray) break;
                        if (r.TokenType != JsonTokenType.Number || !r.TryGetInt64(out long v) || v < 0)
                            throw new SafetensorsFormatException($"{file}: {what}: a shape entry is not a non-negative integer");
                        if (dims.Count == MaxDims) throw new SafetensorsFormatException($"{file}: {what} has more than {MaxDims} dimensions");
                        dims.Add(v);
                    }
                    shape = dims.ToArray();
                    break;
                case "data_offsets":
                    Expect(ref r, JsonTokenType.StartArray, file, $"{what}: data_offsets");
                    begin = ReadOffset(ref r, file, what);
                    end = ReadOffset(ref r, file, what);
                    Expect(ref r, JsonTokenType.EndArray, file, $"{what}: data_offsets (two numbers)");
                    break;
                default:
                    throw new SafetensorsFormatException($"{file}: {what} has the unknown field '{field}'");
            }
        }
        if (dtype is null || shape is null || begin < 0)
            throw new SafetensorsFormatException($"{file}: {what} lacks {(dtype is null ? "dtype" : shape is null ? "shape" : "data_offsets")}");
        if (end < begin) throw new SafetensorsFormatException($"{file}: {what}: data_offsets [{begin}, {end}) end before they begin");
        if (end > dataLength)
            throw new SafetensorsFormatException($"{file}: {what}: data [{begin}, {end}) runs past the {dataLength}-byte data section (truncated?)");
        long elements = 1;
        foreach (long dim in shape)
        {
            if (dim != 0 && elements > long.MaxValue / dim)
                throw new SafetensorsFormatException($"{file}: {what}: shape [{string.Join(", ", shape)}] overflows 64 bits");
            elements *= dim;
        }
        int size = ElementBytes(dtype.Value);
        if (elements > long.MaxValue / size || elements * size != end - begin)
            throw new SafetensorsFormatException(
                $"{file}: {what}: {dtype} [{string.Join(", ", shape)}] needs {(elements > long.MaxValue / size ? "more than 2^63" : (elements * size).ToString())} bytes, its data_offsets hold {end - begin}");
        return new SafetensorsTensorInfo(name, dtype.Value, shape, begin, end);
    }

    private static long ReadOffset(ref Utf8JsonReader r, string file, string what)
    {
        Read(ref r, file, $"{what}: data_offsets");
        if (r.TokenType != JsonTokenType.Number || !r.TryGetInt64(out long v) || v < 0)
            throw new SafetensorsFormatException($"{file}: {what}: a data offset is not a non-negative integer");
        return v;
    }

    /// <summary>The bytes of a header describing <paramref name="tensors"/> (padded with spaces so the data starts
    /// 8-byte aligned, as the reference writer does), with their data laid out in the given order.</summary>
    public static byte[] Build(IEnumerable<(string Name, SafetensorsDType DType, long[] Shape)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long at = 0;
            foreach (var (name, dtype, shape) in tensors)
            {
                long bytes = shape.Aggregate(1L, (a, b) => checked(a * b)) * ElementBytes(dtype);
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype switch { SafetensorsDType.Bool => "BOOL", _ => dtype.ToString() });
                w.WriteStartArray("shape");
                foreach (long d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(at);
                w.WriteNumberValue(at + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                at += bytes;
            }
            w.WriteEndObject();
        }
        var json = new List<byte>(ms.ToArray());
        while ((LengthBytes + json.Count) % 8 != 0) json.Add((byte)' ');
        var result = new byte[LengthBytes + json.Count];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)json.Count);
        json.CopyTo(result, LengthBytes);
        return result;
    }
}
