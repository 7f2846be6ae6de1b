// A GGUF model file opened read-only and memory-mapped: the header, metadata and tensor table are parsed and
// validated up front; tensor data stays in the mapping and is handed out as pointers/spans, never copied.
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using R1Sharp.Tensors;

namespace R1Sharp.Formats;

public sealed unsafe class GgufFile : IDisposable
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    public const int DefaultAlignment = 32;

    /// <summary>ggml tensors have at most this many dimensions.</summary>
    public const int MaxDims = 4;

    /// <summary>Deepest nesting of metadata arrays accepted (bounds the parser's recursion).</summary>
    public const int MaxArrayDepth = 16;

    /// <summary>Sanity caps on the header counts (real models have thousands), so a forged count in a huge
    /// (or sparse) file cannot make the parser size its tables by it.</summary>
    public const int MaxTensors = 1 << 24, MaxKvs = 1 << 24;

    /// <summary>Sanity cap on a metadata array's length (vocabularies are ~10^5), so a forged length in a huge file
    /// cannot make the parser allocate gigabytes before it finds the bytes behind it are garbage.</summary>
    public const int MaxArrayLength = 1 << 24;

    /// <summary>Sanity cap on one metadata string's UTF-8 length (chat templates are kilobytes).</summary>
    public const int MaxStringBytes = 1 << 26;

    internal const int HeaderBytes = 4 + 4 + 8 + 8;

    // Smallest possible encodings, used to reject counts the rest of the file cannot hold before allocating:
    // a KV is a key (u64 length + at least 1 byte), a u32 type and at least a 1-byte value;
    // a tensor info is a name (u64 length + at least 1 byte), u32 n_dims, at least one u64 dim, u32 type, u64 offset.
    internal const int MinKvBytes = 8 + 1 + 4 + 1;
    internal const int MinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

    /// <summary>The keys gguf-split writes in every part of a split model (llama.cpp's LLM_KV_SPLIT_*).</summary>
    public const string SplitNoKey = "split.no", SplitCountKey = "split.count", SplitTensorsKey = "split.tensors.count";

    private readonly Part[] _parts;
    private readonly Layout _first;
    private readonly GgufTensorInfo[] _tensors;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;
    private bool _disposed;

    /// <summary>The file the metadata comes from: the only one, or the first part of a split model.</summary>
    public string Path => _parts[0].Path;

    /// <summary>The model's name from its file: the file name without .gguf, and a split model's without -00001-of-0000N.</summary>
    public string Name => System.IO.Path.GetFileName(SplitPrefix(Path, 0, _parts.Length) ?? System.IO.Path.ChangeExtension(Path, null));

    /// <summary>Every file of the model: one, or the parts of a split model in order.</summary>
    public IReadOnlyList<string> Paths { get; }

    public uint Version => _first.Version;

    /// <summary>Bytes of the file, or of all the parts of a split model together.</summary>
    public long FileSize { get; }

    public int Alignment => _first.Alignment;

    /// <summary>Absolute file offset of the data section (of the first part); tensor offsets are relative to their part's.</summary>
    public long DataOffset => _parts[0].Layout.DataOffset;

    /// <summary>All metadata, enumerated in file order (a split model's: its first part's).</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata => _first.Metadata;

    /// <summary>The tensor table, in file order (a split model's: its parts' tables one after the other).</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>
    /// Maps <paramref name="path"/> read-only and parses it; throws <see cref="GgufFormatException"/> if it is not a
    /// valid GGUF file. A part of a split model (split.count above 1, named PREFIX-NNNNN-of-NNNNN.gguf as gguf-split
    /// writes them), any part, opens the whole model: every part is mapped, checked to belong (split.no, split.count and
    /// split.tensors.count in each, every tensor in exactly one part), and the metadata is the first part's.
    /// </summary>
    public static GgufFile Open(string path)
    {
        var given = Part.Map(path);
        try
        {
            int count = SplitCount(given) ?? 0;
            return count <= 1 ? new GgufFile([given], inMemory: false) : OpenSplit(given, count);
        }
        catch
        {
            given.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Parses a copy of <paramref name="bytes"/> held in native memory, through the same parser and accessors as
    /// a mapped file (used by tests to try thousands of corrupted files without touching the disk).
    /// </summary>
    internal static GgufFile OpenMemory(ReadOnlySpan<byte> bytes, string name = "<memory>")
    {
        byte* p = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, bytes.Length));
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        try
        {
            return new GgufFile([new Part(name, p, bytes.Length, Parse(p, bytes.Length), PartMemory.Native)], inMemory: false);
        }
        catch
        {
            NativeMemory.Free(p);
            throw;
        }
    }

    /// <summary>Opens the other parts of the split model <paramref name="given"/> belongs to, and checks them all.</summary>
    private static GgufFile OpenSplit(Part given, int count)
    {
        int index = SplitNumber(given, SplitNoKey) ?? throw SplitKeyMissing(given, SplitNoKey);
        if (index >= count)
            throw new GgufFormatException(SplitNoKey, given.ValueOffset(SplitNoKey), $"split.no {index} is not below split.count {count}", given.Path);
        string prefix = SplitPrefix(given.Path, index, count) ?? throw new GgufFormatException(SplitNoKey, -1,
            $"split.no {index} and split.count {count} make this part {index + 1} of {count}, but its name does not end with " +
            $"{PartSuffix(index, count)} (the parts of a split model are named PREFIX{PartSuffix(0, count)} and so on)", given.Path);
        var parts = new Part[count];
        parts[index] = given;
        try
        {
            for (int i = 0; i < count; i++)
            {
                if (i == index) continue;
                string path = PartPath(prefix, i, count);
                if (!System.IO.File.Exists(path))
                    throw new GgufFormatException("split", -1, $"part {i + 1} of {count}, {System.IO.Path.GetFileName(path)}, is missing", given.Path);
                try
                {
                    parts[i] = Part.Map(path);
                }
                catch (GgufFormatException e) when (e.File is null)
                {
                    throw e.In(path);
                }
            }
            var first = parts[0];
            int tensors = SplitNumber(first, SplitTensorsKey) ?? throw SplitKeyMissing(first, SplitTensorsKey);
            for (int i = 0; i < count; i++)
            {
                var p = parts[i];
                int partCount = SplitNumber(p, SplitCountKey) ?? throw SplitKeyMissing(p, SplitCountKey);
                if (partCount != count)
                    throw new GgufFormatException(SplitCountKey, p.ValueOffset(SplitCountKey),
                        $"split.count is {partCount}, but {System.IO.Path.GetFileName(given.Path)} says {count}: a part of another split model", p.Path);
                int no = SplitNumber(p, SplitNoKey) ?? throw SplitKeyMissing(p, SplitNoKey);
                if (no != i)
                    throw new GgufFormatException(SplitNoKey, p.ValueOffset(SplitNoKey),
                        $"split.no is {no}, but the file is named as part {i + 1} of {count} (split.no {i})", p.Path);
                int partTensors = SplitNumber(p, SplitTensorsKey) ?? throw SplitKeyMissing(p, SplitTensorsKey);
                if (partTensors != tensors)
                    throw new GgufFormatException(SplitTensorsKey, p.ValueOffset(SplitTensorsKey),
                        $"split.tensors.count is {partTensors}, but {System.IO.Path.GetFileName(first.Path)} says {tensors}: a part of another split model", p.Path);
            }
            var file = new GgufFile(parts, inMemory: false);
            if (file.Tensors.Count != tensors)
            {
                throw new GgufFormatException(SplitTensorsKey, first.ValueOffset(SplitTensorsKey),
                    $"split.tensors.count is {tensors}, but the {count} parts hold {file.Tensors.Count} tensors", first.Path);
            }
            return file;
        }
        catch
        {
            for (int i = 0; i < parts.Length; i++)
                if (i != index) parts[i]?.Dispose();
            throw;
        }
    }

    /// <summary>A part's split.count: null where absent (a single file); a u16 as gguf-split writes it, else an error.</summary>
    private static int? SplitCount(Part p) => SplitNumber(p, SplitCountKey);

    /// <summary>A split key's value: split.no and split.count are u16, split.tensors.count i32 (as llama.cpp reads them).</summary>
    private static int? SplitNumber(Part p, string key)
    {
        if (!p.Layout.Metadata.TryGetValue(key, out var v)) return null;
        var expected = key == SplitTensorsKey ? GgufValueType.Int32 : GgufValueType.UInt16;
        if (v.Type != expected)
            throw new GgufFormatException(key, p.ValueOffset(key), $"{key} is {Describe(v)}, expected a {expected}", p.Path);
        int n = key == SplitTensorsKey ? (int)v.Value : (ushort)v.Value;
        if (n < 0) throw new GgufFormatException(key, p.ValueOffset(key), $"{key} is negative ({n})", p.Path);
        return n;
    }

    private static GgufFormatException SplitKeyMissing(Part p, string key) =>
        new(key, -1, $"{key} is missing: the file is not a part of a split model written by gguf-split", p.Path);

    /// <summary>The file name of part <paramref name="index"/> (0-based) of <paramref name="count"/>: gguf-split's "%s-%05d-of-%05d.gguf".</summary>
    public static string PartPath(string prefix, int index, int count) => prefix + PartSuffix(index, count);

    private static string PartSuffix(int index, int count) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"-{index + 1:D5}-of-{count:D5}.gguf");

    /// <summary>The prefix of a part's path where its name ends as part <paramref name="index"/> of <paramref name="count"/> must, else null.</summary>
    public static string? SplitPrefix(string path, int index, int count)
    {
        string suffix = PartSuffix(index, count);
        return path.Length > suffix.Length && path.EndsWith(suffix, StringComparison.Ordinal) ? path[..^suffix.Length] : null;
    }

    private GgufFile(Part[] parts, bool inMemory)
    {
        _parts = parts;
        _first = parts[0].Layout;
        InMemory = inMemory;
        Paths = Array.AsReadOnly(Array.ConvertAll(parts, p => p.Path));
        int total = 0;
        foreach (var p in parts) total += p.Layout.Tensors.Length;
        _tensors = new GgufTensorInfo[total];
        _tensorsByName = new Dictionary<string, GgufTensorInfo>(total, StringComparer.Ordinal);
        int k = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            FileSize += parts[i].Length;
            foreach (var t in parts[i].Layout.Tensors)
            {
                var info = i == 0 ? t : t with { Part = i };
                if (!_tensorsByName.TryAdd(info.Name, info))
                    throw new GgufFormatException("tensor:" + info.Name, -1,
                        $"tensor {info.Name} is also in {System.IO.Path.GetFileName(parts[_tensorsByName[info.Name].Part].Path)}: each tensor must be in one part", parts[i].Path);
                _tensors[k++] = info;
            }
        }
        Tensors = Array.AsReadOnly(_tensors);
    }

    /// <summary>How a part's bytes are held.</summary>
    private enum PartMemory { Mapped, Native, HugePages }

    /// <summary>One file of the model: its bytes, where they are held, and its parsed header.</summary>
    private sealed class Part(string path, byte* basePtr, long length, Layout layout, PartMemory memory,
        MemoryMappedFile? mapping = null, MemoryMappedViewAccessor? view = null) : IDisposable
    {
        public string Path => path;
        public byte* Base { get; private set; } = basePtr;
        public long Length => length;
        public Layout Layout => layout;
        public PartMemory Memory => memory;

        public long ValueOffset(string key) => layout.ValueOffsets.GetValueOrDefault(key, -1);

        /// <summary>Maps <paramref name="path"/> read-only and parses its header.</summary>
        public static Part Map(string path)
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            long length = stream.Length;
            if (length == 0)
            {
                stream.Dispose();
                throw new GgufFormatException("header.magic", 0, "file is empty");
            }
            MemoryMappedFile? mapping = null;
            MemoryMappedViewAccessor? view = null;
            bool acquired = false;
            try
            {
                mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                byte* p = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                acquired = true;
                p += view.PointerOffset;
                return new Part(path, p, length, Parse(p, length), PartMemory.Mapped, mapping, view);
            }
            catch
            {
                if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
                view?.Dispose();
                if (mapping is null) stream.Dispose();
                mapping?.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            if (Base is null) return;
            switch (memory)
            {
                case PartMemory.Mapped:
                    view!.SafeMemoryMappedViewHandle.ReleasePointer();
                    view.Dispose();
                    mapping!.Dispose();
                    break;
                case PartMemory.HugePages: HugePages.Free(Base); break;
                default: NativeMemory.Free(Base); break;
            }
            Base = null;
        }
    }

    /// <summary>What the header of one file says: version, metadata, tensor table and where its data section is.</summary>
    private sealed record Layout(uint Version, IReadOnlyDictionary<string, GgufValue> Metadata, Dictionary<string, long> ValueOffsets,
        GgufTensorInfo[] Tensors, int Alignment, long DataOffset, long DataSize);

    /// <summary>Parses and checks the header, metadata and tensor table of the <paramref name="length"/> bytes at <paramref name="basePtr"/>.</summary>
    private static Layout Parse(byte* basePtr, long length)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF reading assumes a little-endian CPU");
        var c = new GgufCursor(basePtr, length);

        // Header: magic, version, tensor count, KV count.
        uint magic = c.ReadU32("header.magic");
        if (magic != Magic)
            throw new GgufFormatException("header.magic", 0, $"magic is {MagicText(magic)}, expected 0x{Magic:X8} (\"GGUF\"); not a GGUF file");
        uint version = c.ReadU32("header.version");
        if (version != 2 && version != 3)
        {
            string why = version switch
            {
                1 => "version 1 (32-bit counts) is not supported; re-convert the file to version 3",
                0x02000000 or 0x03000000 => "big-endian GGUF files are not supported",
                _ => $"unsupported version {version} (expected 2 or 3)",
            };
            throw new GgufFormatException("header.version", 4, why);
        }
        ulong tensorCount = c.ReadU64("header.tensor_count");
        ulong kvCount = c.ReadU64("header.kv_count");
        long rest = c.Remaining;
        if (tensorCount > (ulong)(rest / MinTensorInfoBytes))
            throw new GgufFormatException("header.tensor_count", 8,
                $"tensor count {tensorCount} cannot fit in the {rest} bytes after the header ({MinTensorInfoBytes}+ bytes each)");
        if (tensorCount > MaxTensors)
            throw new GgufFormatException("header.tensor_count", 8, $"tensor count {tensorCount} exceeds the limit of {MaxTensors}");
        long restForKvs = rest - (long)tensorCount * MinTensorInfoBytes;
        if (kvCount > (ulong)(restForKvs / MinKvBytes))
            throw new GgufFormatException("header.kv_count", 16,
                $"KV count {kvCount} cannot fit in the {rest} bytes after the header ({MinKvBytes}+ bytes each, plus the tensor table)");

        if (kvCount > MaxKvs)
            throw new GgufFormatException("header.kv_count", 16, $"KV count {kvCount} exceeds the limit of {MaxKvs}");

        // Metadata. Tables start small and grow: a count is only trusted as far as the bytes behind it parse.
        var metadata = new OrderedDictionary<string, GgufValue>(InitialCapacity(kvCount), StringComparer.Ordinal);
        var valueOffsets = new Dictionary<string, long>(InitialCapacity(kvCount), StringComparer.Ordinal);
        for (long i = 0; i < (long)kvCount; i++)
        {
            long keyAt = c.Position;
            string key = c.ReadString($"kv[{i}].key");
            if (key.Length == 0) throw new GgufFormatException($"kv[{i}].key", keyAt, "empty key");
            if (metadata.ContainsKey(key)) throw new GgufFormatException($"kv[{i}].key", keyAt, $"duplicate key \"{key}\"");
            long typeAt = c.Position;
            var type = (GgufValueType)c.ReadU32($"kv[{key}].type");
            if (!IsValueType(type)) throw new GgufFormatException($"kv[{key}].type", typeAt, $"unknown value type {(uint)type}");
            valueOffsets[key] = c.Position;
            metadata.Add(key, ReadValue(ref c, type, $"kv[{key}].value", 0));
        }

        int alignment = DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out var alignValue))
        {
            long at = valueOffsets["general.alignment"];
            long? a = IsIntegerType(alignValue.Type) ? alignValue.AsInt64() : null;
            if (a is null)
                throw new GgufFormatException("kv[general.alignment].value", at, $"general.alignment is {Describe(alignValue)}, expected an integer");
            if (a <= 0 || (a & (a - 1)) != 0 || a > 1 << 30)
                throw new GgufFormatException("kv[general.alignment].value", at, $"general.alignment {a} is not a power of two in 1..2^30");
            alignment = (int)a;
        }

        // Tensor table.
        var tensors = new List<GgufTensorInfo>(InitialCapacity(tensorCount));
        var names = new HashSet<string>(InitialCapacity(tensorCount), StringComparer.Ordinal);
        var offsetFieldAt = new List<long>(InitialCapacity(tensorCount));
        for (int i = 0; i < (int)tensorCount; i++)
        {
            string f = $"tensor_info[{i}]";
            long at = c.Position;
            string name = c.ReadString(f + ".name");
            if (name.Length == 0) throw new GgufFormatException(f + ".name", at, "empty tensor name");
            if (!names.Add(name)) throw new GgufFormatException(f + ".name", at, $"duplicate tensor name \"{name}\"");

            at = c.Position;
            uint nDims = c.ReadU32(f + ".n_dims");
            if (nDims is 0 or > MaxDims)
                throw new GgufFormatException(f + ".n_dims", at, nDims == 0
                    ? "n_dims 0: scalar tensors are not supported"
                    : $"n_dims {nDims} exceeds {MaxDims}");
            var shape = new long[nDims];
            long elements = 1;
            long ne0At = c.Position;
            for (int d = 0; d < shape.Length; d++)
            {
                at = c.Position;
                ulong ne = c.ReadU64($"{f}.ne[{d}]");
                // ggml itself tolerates 0-sized dimensions; no model tensor has one, so here it marks a bad file.
                if (ne == 0) throw new GgufFormatException($"{f}.ne[{d}]", at, "dimension is 0");
                if (ne > long.MaxValue || elements > long.MaxValue / (long)ne)
                    throw new GgufFormatException($"{f}.ne[{d}]", at, $"dimension {ne} makes the element count overflow 64 bits");
                shape[d] = (long)ne;
                elements *= (long)ne;
            }

            at = c.Position;
            uint typeRaw = c.ReadU32(f + ".type");
            var type = (GgmlType)typeRaw;
            if (!GgmlTypeInfo.IsKnown(type)) throw new GgufFormatException(f + ".type", at, $"unknown tensor type {typeRaw}");
            int blockSize = GgmlTypeInfo.BlockSize(type), blockBytes = GgmlTypeInfo.BlockBytes(type);
            if (shape[0] % blockSize != 0)
                throw new GgufFormatException(f + ".ne[0]", ne0At, $"ne[0] = {shape[0]} is not a multiple of the {GgmlTypeInfo.Name(type)} block size {blockSize}");
            long rowBlocks = shape[0] / blockSize, rows = elements / shape[0];
            if (rowBlocks > long.MaxValue / blockBytes || rowBlocks * blockBytes > long.MaxValue / rows)
                throw new GgufFormatException(f + ".ne[0]", ne0At, "tensor byte size overflows 64 bits");

            at = c.Position;
            ulong offset = c.ReadU64(f + ".offset");
            if (offset % (ulong)alignment != 0)
                throw new GgufFormatException(f + ".offset", at, $"offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > long.MaxValue)
                throw new GgufFormatException(f + ".offset", at, $"offset {offset} is past the end of the file");
            offsetFieldAt.Add(at);
            tensors.Add(new GgufTensorInfo(name, shape, type, (long)offset));
        }

        // Data section: starts at the next multiple of the alignment; every tensor must lie inside it, without overlap.
        long tableEnd = c.Position;
        long dataOffset = (tableEnd + alignment - 1) / alignment * alignment;
        long dataSize = length - dataOffset;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            long size = t.ByteSize;
            if (t.Offset > dataSize || size > dataSize - t.Offset)
                throw new GgufFormatException($"tensor_info[{i}].offset", offsetFieldAt[i],
                    $"tensor \"{t.Name}\" [{t.Offset}, {t.Offset}+{size}) runs past the end of the data section ({Math.Max(0, dataSize)} bytes at file offset {dataOffset})");
        }
        if (tensors.Count > 1)
        {
            var order = new int[tensors.Count];
            for (int i = 0; i < order.Length; i++) order[i] = i;
            Array.Sort(order, (x, y) => tensors[x].Offset.CompareTo(tensors[y].Offset));
            for (int k = 1; k < order.Length; k++)
            {
                var prev = tensors[order[k - 1]];
                var next = tensors[order[k]];
                if (prev.Offset + prev.ByteSize > next.Offset)
                    throw new GgufFormatException($"tensor_info[{order[k]}].offset", offsetFieldAt[order[k]],
                        $"tensor \"{next.Name}\" at data offset {next.Offset} overlaps \"{prev.Name}\" [{prev.Offset}, {prev.Offset + prev.ByteSize})");
            }
        }

        return new Layout(version, new System.Collections.ObjectModel.ReadOnlyDictionary<string, GgufValue>(metadata), valueOffsets,
            tensors.ToArray(), alignment, dataOffset, dataSize);
    }

    private static string MagicText(uint magic)
    {
        Span<byte> b = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, magic);
        foreach (byte x in b)
            if (x is < 0x20 or > 0x7E) return $"0x{magic:X8}";
        return $"0x{magic:X8} (\"{System.Text.Encoding.ASCII.GetString(b)}\")";
    }

    private static int InitialCapacity(ulong count) => (int)Math.Min(count, 1024);

    private static GgufValue ReadValue(ref GgufCursor c, GgufValueType type, string field, int depth) => type switch
    {
        GgufValueType.UInt8 => new(type, c.ReadU8(field)),
        GgufValueType.Int8 => new(type, c.Read<sbyte>(field)),
        GgufValueType.UInt16 => new(type, c.Read<ushort>(field)),
        GgufValueType.Int16 => new(type, c.Read<short>(field)),
        GgufValueType.UInt32 => new(type, c.Read<uint>(field)),
        GgufValueType.Int32 => new(type, c.Read<int>(field)),
        GgufValueType.Float32 => new(type, c.Read<float>(field)),
        GgufValueType.Bool => new(type, ReadBool(ref c, field)),
        GgufValueType.String => new(type, c.ReadString(field)),
        GgufValueType.UInt64 => new(type, c.Read<ulong>(field)),
        GgufValueType.Int64 => new(type, c.Read<long>(field)),
        GgufValueType.Float64 => new(type, c.Read<double>(field)),
        GgufValueType.Array => ReadArray(ref c, field, depth),
        _ => throw new GgufFormatException(field, c.Position, $"unknown value type {(uint)type}"),
    };

    private static bool ReadBool(ref GgufCursor c, string field)
    {
        long at = c.Position;
        byte b = c.ReadU8(field);
        if (b > 1) throw new GgufFormatException(field, at, $"bool value {b} is neither 0 nor 1");
        return b == 1;
    }

    private static GgufValue ReadArray(ref GgufCursor c, string field, int depth)
    {
        long at = c.Position;
        var et = (GgufValueType)c.ReadU32(field);
        if (!IsValueType(et)) throw new GgufFormatException(field, at, $"unknown array element type {(uint)et}");
        if (et == GgufValueType.Array && depth + 1 >= MaxArrayDepth)
            throw new GgufFormatException(field, at, $"arrays nested deeper than {MaxArrayDepth} levels");
        at = c.Position;
        ulong count = c.ReadU64(field);
        int min = MinEncodedBytes(et);
        if (count > (ulong)(c.Remaining / min))
            throw new GgufFormatException(field, at, $"array of {count} {et} values cannot fit in the {c.Remaining} bytes left ({min}+ bytes each)");
        if (count > MaxArrayLength)
            throw new GgufFormatException(field, at, $"array of {count} values exceeds the limit of {MaxArrayLength}");
        int n = (int)count;
        switch (et)
        {
            case GgufValueType.UInt8: return new(GgufValueType.Array, c.ReadArray<byte>(n, field), et);
            case GgufValueType.Int8: return new(GgufValueType.Array, c.ReadArray<sbyte>(n, field), et);
            case GgufValueType.UInt16: return new(GgufValueType.Array, c.ReadArray<ushort>(n, field), et);
            case GgufValueType.Int16: return new(GgufValueType.Array, c.ReadArray<short>(n, field), et);
            case GgufValueType.UInt32: return new(GgufValueType.Array, c.ReadArray<uint>(n, field), et);
            case GgufValueType.Int32: return new(GgufValueType.Array, c.ReadArray<int>(n, field), et);
            case GgufValueType.Float32: return new(GgufValueType.Array, c.ReadArray<float>(n, field), et);
            case GgufValueType.UInt64: return new(GgufValueType.Array, c.ReadArray<ulong>(n, field), et);
            case GgufValueType.Int64: return new(GgufValueType.Array, c.ReadArray<long>(n, field), et);
            case GgufValueType.Float64: return new(GgufValueType.Array, c.ReadArray<double>(n, field), et);
            case GgufValueType.Bool:
            {
                var a = new bool[n];
                for (int i = 0; i < a.Length; i++) a[i] = ReadBool(ref c, field);
                return new(GgufValueType.Array, a, et);
            }
            case GgufValueType.String:
            {
                var a = new string[n];
                for (int i = 0; i < a.Length; i++) a[i] = c.ReadString(field);
                return new(GgufValueType.Array, a, et);
            }
            default:
            {
                var a = new GgufValue[n];
                for (int i = 0; i < a.Length; i++) a[i] = ReadArray(ref c, field, depth + 1);
                return new(GgufValueType.Array, a, et);
            }
        }
    }

    internal static bool IsValueType(GgufValueType t) => (uint)t <= (uint)GgufValueType.Float64;

    internal static bool IsIntegerType(GgufValueType t) => t is GgufValueType.UInt8 or GgufValueType.Int8
        or GgufValueType.UInt16 or GgufValueType.Int16 or GgufValueType.UInt32 or GgufValueType.Int32
        or GgufValueType.UInt64 or GgufValueType.Int64;

    /// <summary>Fewest bytes one value of type <paramref name="t"/> can be encoded in.</summary>
    internal static int MinEncodedBytes(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
        _ => 4 + 8, // array: element type + count
    };

    // ---- tensors ----

    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    public GgufTensorInfo GetTensor(string name) =>
        FindTensor(name) ?? throw new GgufFormatException("tensor:" + name, -1, $"missing tensor {name}");

    /// <summary>Pointer to the tensor's first byte inside the mapping (of its part); valid until <see cref="Dispose"/>.</summary>
    public byte* TensorPointer(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)t.Part >= (uint)_parts.Length)
            throw new ArgumentException($"tensor {t.Name} is in part {t.Part}, but this model has {_parts.Length} file(s)", nameof(t));
        var p = _parts[t.Part];
        long size = t.ByteSize, dataSize = p.Layout.DataSize;
        if (t.Offset < 0 || t.Offset > dataSize || size > dataSize - t.Offset)
            throw new ArgumentException($"tensor {t.Name} [{t.Offset}, +{size}) is outside this file's data section", nameof(t));
        return p.Base + p.Layout.DataOffset + t.Offset;
    }

    /// <summary>The file holding the tensor (one of <see cref="Paths"/>).</summary>
    public string PathOf(GgufTensorInfo t) => _parts[t.Part].Path;

    /// <summary>Where the tensor's bytes start in its file.</summary>
    public long FileOffsetOf(GgufTensorInfo t) => _parts[t.Part].Layout.DataOffset + t.Offset;

    /// <summary>Writes the tensor's bytes to <paramref name="stream"/> from the mapping, in pieces of at most 16 MiB.</summary>
    public void WriteTensor(GgufTensorInfo t, Stream stream)
    {
        byte* p = TensorPointer(t);
        for (long left = t.ByteSize; left > 0;)
        {
            int n = (int)Math.Min(left, 1 << 24);
            stream.Write(new ReadOnlySpan<byte>(p, n));
            p += n;
            left -= n;
        }
    }

    /// <summary>The tensor's bytes, in place in the mapping; valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> TensorBytes(GgufTensorInfo t)
    {
        byte* p = TensorPointer(t);
        long size = t.ByteSize;
        if (size > int.MaxValue)
            throw new InvalidOperationException($"tensor {t.Name} is {size} bytes, too large for a span; use TensorPointer");
        return new ReadOnlySpan<byte>(p, (int)size);
    }

    // ---- typed metadata ----

    public string? GetString(string key)
    {
        if (!_first.Metadata.TryGetValue(key, out var v)) return null;
        return v.Type == GgufValueType.String ? (string)v.Value : throw Unusable(key, v, "a string");
    }

    /// <summary>Any integer type, as a long (a u64 above long.MaxValue is an error).</summary>
    public long? GetInt(string key)
    {
        if (!_first.Metadata.TryGetValue(key, out var v)) return null;
        if (!IsIntegerType(v.Type)) throw Unusable(key, v, "an integer");
        return v.AsInt64() ?? throw Unusable(key, v, "an integer that fits in 64 signed bits");
    }

    /// <summary>A float or double, or an integer widened to double.</summary>
    public double? GetFloat(string key)
    {
        if (!_first.Metadata.TryGetValue(key, out var v)) return null;
        if (v.Type is not (GgufValueType.Float32 or GgufValueType.Float64) && !IsIntegerType(v.Type)) throw Unusable(key, v, "a number");
        return v.AsDouble() ?? throw Unusable(key, v, "a number");
    }

    public bool? GetBool(string key)
    {
        if (!_first.Metadata.TryGetValue(key, out var v)) return null;
        return v.Type == GgufValueType.Bool ? (bool)v.Value : throw Unusable(key, v, "a bool");
    }

    public string[]? GetStringArray(string key)
    {
        if (!_first.Metadata.TryGetValue(key, out var v)) return null;
        return v.Type == GgufValueType.Array && v.ElementType == GgufValueType.String
            ? (string[])((string[])v.Value).Clone()
            : throw Unusable(key, v, "an array of strings");
    }

    /// <summary>An array of any integer type whose values all fit in an int.</summary>
    public int[]? GetInt32Array(string key)
    {
        if (!_first.Metadata.TryGetValue(key, out var v)) return null;
        // Switch on the declared element type, not the CLR array type: the CLR lets a uint[] pass as int[].
        if (v.Type != GgufValueType.Array || !IsIntegerType(v.ElementType)) throw Unusable(key, v, "an array of integers");
        if (v.ElementType == GgufValueType.Int32) return (int[])((int[])v.Value).Clone();
        var a = (Array)v.Value;
        var r = new int[a.Length];
        for (int i = 0; i < r.Length; i++)
        {
            long x = v.ElementType switch
            {
                GgufValueType.UInt8 => ((byte[])a)[i],
                GgufValueType.Int8 => ((sbyte[])a)[i],
                GgufValueType.UInt16 => ((ushort[])a)[i],
                GgufValueType.Int16 => ((short[])a)[i],
                GgufValueType.UInt32 => ((uint[])a)[i],
                GgufValueType.Int64 => ((long[])a)[i],
                _ => ((ulong[])a)[i] > int.MaxValue ? long.MaxValue : (long)((ulong[])a)[i],
            };
            if (x is < int.MinValue or > int.MaxValue) throw Unusable(key, v, $"int32 values (item {i} is out of range)");
            r[i] = (int)x;
        }
        return r;
    }

    /// <summary>An array of float32, or of float64 converted to float.</summary>
    public float[]? GetFloat32Array(string key)
    {
        if (!_first.Metadata.TryGetValue(key, out var v)) return null;
        return v.Type != GgufValueType.Array ? throw Unusable(key, v, "an array of floats") : v.ElementType switch
        {
            GgufValueType.Float32 => (float[])((float[])v.Value).Clone(),
            GgufValueType.Float64 => Array.ConvertAll((double[])v.Value, x => (float)x),
            _ => throw Unusable(key, v, "an array of floats"),
        };
    }

    public string RequireString(string key) => GetString(key) ?? throw Missing(key);

    public long RequireInt(string key) => GetInt(key) ?? throw Missing(key);

    public double RequireFloat(string key) => GetFloat(key) ?? throw Missing(key);

    private GgufFormatException Unusable(string key, GgufValue v, string expected) =>
        new(key, _first.ValueOffsets.GetValueOrDefault(key, -1), $"metadata {key} is {Describe(v)}, expected {expected}");

    private static GgufFormatException Missing(string key) => new(key, -1, $"missing metadata key {key}");

    private static string Describe(GgufValue v) => v.Type == GgufValueType.Array
        ? $"an array of {v.ArrayLength} {v.ElementType}"
        : $"a {v.Type} ({v})";

    /// <summary>
    /// The whole file (every part of a split model) copied into anonymous memory, 2 MiB-aligned with transparent huge
    /// pages asked for (Linux), as a second <see cref="GgufFile"/> of its own, while this one stays open (a model may
    /// keep running from the mapping meanwhile), on <paramref name="threads"/> threads (1: the calling thread alone).
    /// The weights then stream through 2 MiB pages instead of the page cache's 4 KiB ones: fewer TLB misses, about 15%
    /// more read bandwidth with 2 threads on the machines measured. The copied pieces of a mapping are dropped from this
    /// process as the copy goes (they stay in the page cache), so resident memory peaks near one copy of the file.
    /// Stops between 64 MiB pieces when <paramref name="cancel"/> is set.
    /// </summary>
    public GgufFile CopyToMemory(int threads, CancellationToken cancel = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var copies = new Part[_parts.Length];
        try
        {
            for (int i = 0; i < _parts.Length; i++)
            {
                var p = _parts[i];
                copies[i] = new Part(p.Path, Copy(p, threads, cancel), p.Length, p.Layout, PartMemory.HugePages);
            }
            return new GgufFile(copies, inMemory: true) { RepackWeights = RepackWeights };
        }
        catch
        {
            foreach (var c in copies) c?.Dispose();
            throw;
        }
    }

    /// <summary>A part's bytes in huge-page memory, each piece's mapped pages dropped from this process once copied.</summary>
    private static byte* Copy(Part part, int threads, CancellationToken cancel)
    {
        byte* copy = HugePages.Alloc(part.Length);
        try
        {
            const long Chunk = 64 << 20;
            byte* src = part.Base;
            long length = part.Length;
            bool mapped = part.Memory == PartMemory.Mapped;
            int pieces = (int)((length + Chunk - 1) / Chunk);
            void CopyPiece(int i)
            {
                long from = i * Chunk, n = Math.Min(Chunk, length - from);
                Buffer.MemoryCopy(src + from, copy + from, n, n);
                // the copied pages leave this process at once (they stay in the page cache): resident memory peaks
                // near one copy of the file, not two
                if (mapped) HugePages.Release(src + from, n);
            }
            if (threads == 1)
            {
                for (int i = 0; i < pieces; i++)
                {
                    cancel.ThrowIfCancellationRequested();
                    CopyPiece(i);
                }
            }
            else
            {
                Parallel.For(0, pieces, new ParallelOptions { CancellationToken = cancel, MaxDegreeOfParallelism = threads }, CopyPiece);
            }
            return copy;
        }
        catch
        {
            HugePages.Free(copy);
            throw;
        }
    }

    /// <summary>Whether the file lives in memory of its own (made by <see cref="CopyToMemory"/>).</summary>
    public bool InMemory { get; }

    /// <summary>
    /// Whether a model's products read the Q8_0, Q4_K, Q6_K and Q5_0 matrices in their interleaved decode layouts: rewritten
    /// in place in an in-memory copy, read with the same arithmetic from a mapping (which is never written:
    /// <see cref="Kernels.WeightMatrix.InterleaveOnRead"/>, slower, but with the same results, so a model may move from
    /// one to the other). True unless turned off
    /// (the file's own layout: to compare layouts, or to decode from the mapping at its best).
    /// </summary>
    public bool RepackWeights { get; set; } = true;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var p in _parts) p.Dispose();
    }

    public override string ToString() => $"{Path}: GGUF v{Version}, {Metadata.Count} KVs, {_tensors.Length} tensors" +
                                         (_parts.Length > 1 ? $" in {_parts.Length} parts" : "");
}
