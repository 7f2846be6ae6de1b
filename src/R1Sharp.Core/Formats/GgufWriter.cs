// Writes GGUF v2/v3 files: metadata in insertion order, then the tensor table, then the aligned tensor data.
// Tensor data is either a caller-held buffer or a callback that streams it, so multi-GB files never sit in memory.
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using R1Sharp.Tensors;

namespace R1Sharp.Formats;

public sealed class GgufWriter
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly OrderedDictionary<string, GgufValue> _metadata = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    private sealed record PendingTensor(string Name, GgmlType Type, long[] Shape, long ByteSize, ReadOnlyMemory<byte> Data, Action<Stream>? WriteData);

    public GgufWriter(uint version = 3, int alignment = GgufFile.DefaultAlignment)
    {
        if (version is not (2 or 3)) throw new ArgumentOutOfRangeException(nameof(version), version, "GGUF version must be 2 or 3");
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0 || alignment > 1 << 30)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a power of two in 1..2^30");
        Version = version;
        Alignment = alignment;
    }

    public uint Version { get; }

    public int Alignment { get; }

    /// <summary>Adds a key, or replaces an existing key's value in place (keeping its position).</summary>
    public void SetMetadata(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        Validate(value, key, 0);
        if (key == "general.alignment" && (!GgufFile.IsIntegerType(value.Type) || value.AsInt64() != Alignment))
            throw new ArgumentException($"general.alignment {value} disagrees with the writer's alignment {Alignment}; set it through the constructor", nameof(value));
        _metadata[key] = value;
    }

    /// <summary>Adds a tensor whose bytes are in <paramref name="data"/> (held, not copied, until Write).</summary>
    public void AddTensor(string name, GgmlType type, long[] shape, ReadOnlyMemory<byte> data)
    {
        long size = CheckTensor(name, type, shape);
        if (data.Length != size)
            throw new ArgumentException($"tensor {name}: data is {data.Length} bytes, expected {size} for {GgmlTypeInfo.Name(type)} [{string.Join(", ", shape)}]", nameof(data));
        Add(new PendingTensor(name, type, (long[])shape.Clone(), size, data, null));
    }

    /// <summary>Adds a tensor whose bytes <paramref name="writeData"/> writes at Write time; it must write exactly the tensor's byte size.</summary>
    public void AddTensor(string name, GgmlType type, long[] shape, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        long size = CheckTensor(name, type, shape);
        Add(new PendingTensor(name, type, (long[])shape.Clone(), size, default, writeData));
    }

    private void Add(PendingTensor t)
    {
        _tensors.Add(t);
        _tensorNames.Add(t.Name);
    }

    private long CheckTensor(string name, GgmlType type, long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (_tensorNames.Contains(name)) throw new ArgumentException($"duplicate tensor name {name}", nameof(name));
        if (!GgmlTypeInfo.IsKnown(type)) throw new ArgumentOutOfRangeException(nameof(type), type, "unknown tensor type");
        if (shape.Length is 0 or > GgufFile.MaxDims) throw new ArgumentException($"tensor {name}: {shape.Length} dimensions, expected 1..{GgufFile.MaxDims}", nameof(shape));
        foreach (long d in shape)
            if (d < 1) throw new ArgumentException($"tensor {name}: dimension {d} is not positive", nameof(shape));
        if (shape[0] % GgmlTypeInfo.BlockSize(type) != 0)
            throw new ArgumentException($"tensor {name}: ne[0] = {shape[0]} is not a multiple of the {GgmlTypeInfo.Name(type)} block size", nameof(shape));
        return new GgufTensorInfo(name, shape, type, 0).ByteSize; // checked: throws OverflowException on absurd shapes
    }

    /// <summary>Writes to a temporary file next to <paramref name="path"/> and renames it into place.</summary>
    public void Write(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        string tmp = full + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
                Write(fs);
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Bytes before the tensor data: header, metadata and tensor table, padded to the alignment.</summary>
    public long HeaderBytes
    {
        get
        {
            var s = new CountingStream(Stream.Null);
            WriteHeader(s);
            return s.Written;
        }
    }

    public void Write(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var s = new CountingStream(stream);
        WriteHeader(s);

        foreach (var t in _tensors)
        {
            if (t.WriteData is null)
            {
                s.Write(t.Data.Span);
            }
            else
            {
                var ts = new TensorStream(s, t.Name, t.ByteSize);
                t.WriteData(ts);
                if (ts.Written != t.ByteSize)
                    throw new InvalidOperationException($"tensor {t.Name}: writeData wrote {ts.Written} bytes, expected {t.ByteSize}");
            }
            Pad(s);
        }
        s.Flush();
    }

    private void WriteHeader(CountingStream s)
    {
        var kvs = new List<KeyValuePair<string, GgufValue>>(_metadata.Count + 1);
        if (Alignment != GgufFile.DefaultAlignment && !_metadata.ContainsKey("general.alignment"))
            kvs.Add(new("general.alignment", GgufValue.Of((uint)Alignment)));
        kvs.AddRange(_metadata);

        // Header.
        WriteU32(s, GgufFile.Magic);
        WriteU32(s, Version);
        WriteU64(s, (ulong)_tensors.Count);
        WriteU64(s, (ulong)kvs.Count);

        foreach (var (key, value) in kvs)
        {
            WriteString(s, key);
            WriteU32(s, (uint)value.Type);
            WriteValue(s, value);
        }

        // Tensor table: each tensor starts at the next aligned offset after the previous one.
        long offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(s, t.Name);
            WriteU32(s, (uint)t.Shape.Length);
            foreach (long d in t.Shape) WriteU64(s, (ulong)d);
            WriteU32(s, (uint)t.Type);
            WriteU64(s, (ulong)offset);
            offset = AlignUp(offset + t.ByteSize);
        }
        Pad(s);
    }

    private long AlignUp(long n) => checked((n + Alignment - 1) / Alignment * Alignment);

    private void Pad(CountingStream s)
    {
        int pad = (int)(AlignUp(s.Written) - s.Written);
        Span<byte> zeros = stackalloc byte[Math.Min(pad, 1024)];
        zeros.Clear();
        while (pad > 0)
        {
            int n = Math.Min(pad, zeros.Length);
            s.Write(zeros[..n]);
            pad -= n;
        }
    }

    private static void WriteU32(Stream s, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        s.Write(b);
    }

    private static void WriteU64(Stream s, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        s.Write(b);
    }

    private static void WriteString(Stream s, string v)
    {
        int n = StrictUtf8.GetByteCount(v);
        WriteU64(s, (ulong)n);
        byte[]? rented = n > 256 ? ArrayPool<byte>.Shared.Rent(n) : null;
        Span<byte> buf = rented ?? stackalloc byte[256];
        StrictUtf8.GetBytes(v, buf);
        s.Write(buf[..n]);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
    }

    private static void WriteValue(Stream s, GgufValue v)
    {
        switch (v.Value)
        {
            case string x: WriteString(s, x); break;
            case bool x: s.WriteByte(x ? (byte)1 : (byte)0); break;
            case byte x: s.WriteByte(x); break;
            case sbyte x: s.WriteByte((byte)x); break;
            case ushort x: WriteRaw(s, x); break;
            case short x: WriteRaw(s, x); break;
            case uint x: WriteRaw(s, x); break;
            case int x: WriteRaw(s, x); break;
            case float x: WriteRaw(s, x); break;
            case ulong x: WriteRaw(s, x); break;
            case long x: WriteRaw(s, x); break;
            case double x: WriteRaw(s, x); break;
            case Array a:
                WriteU32(s, (uint)v.ElementType);
                WriteU64(s, (ulong)a.Length);
                switch (a)
                {
                    case string[] xs: foreach (var x in xs) WriteString(s, x); break;
                    case GgufValue[] xs: foreach (var x in xs) WriteValue(s, x); break;
                    case bool[] xs: foreach (var x in xs) s.WriteByte(x ? (byte)1 : (byte)0); break;
                    case byte[] xs: s.Write(xs); break;
                    case sbyte[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case ushort[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case short[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case uint[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case int[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case float[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case ulong[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case long[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                    case double[] xs: s.Write(MemoryMarshal.AsBytes(xs.AsSpan())); break;
                }
                break;
        }
    }

    private static void WriteRaw<T>(Stream s, T v) where T : unmanaged => s.Write(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in v)));

    /// <summary>Checks that the CLR value matches the declared GGUF type, recursively, so Write never emits a file the reader rejects.</summary>
    private static void Validate(GgufValue v, string key, int depth)
    {
        // Exact type checks: the CLR lets a uint[] pass "is int[]", which would write the wrong element type.
        Type? t = v.Value?.GetType();
        bool ok = v.Type switch
        {
            GgufValueType.UInt8 => t == typeof(byte),
            GgufValueType.Int8 => t == typeof(sbyte),
            GgufValueType.UInt16 => t == typeof(ushort),
            GgufValueType.Int16 => t == typeof(short),
            GgufValueType.UInt32 => t == typeof(uint),
            GgufValueType.Int32 => t == typeof(int),
            GgufValueType.Float32 => t == typeof(float),
            GgufValueType.Bool => t == typeof(bool),
            GgufValueType.String => t == typeof(string),
            GgufValueType.UInt64 => t == typeof(ulong),
            GgufValueType.Int64 => t == typeof(long),
            GgufValueType.Float64 => t == typeof(double),
            GgufValueType.Array => v.ElementType switch
            {
                GgufValueType.UInt8 => t == typeof(byte[]),
                GgufValueType.Int8 => t == typeof(sbyte[]),
                GgufValueType.UInt16 => t == typeof(ushort[]),
                GgufValueType.Int16 => t == typeof(short[]),
                GgufValueType.UInt32 => t == typeof(uint[]),
                GgufValueType.Int32 => t == typeof(int[]),
                GgufValueType.Float32 => t == typeof(float[]),
                GgufValueType.Bool => t == typeof(bool[]),
                GgufValueType.String => t == typeof(string[]) && Array.TrueForAll((string[])v.Value!, x => x is not null),
                GgufValueType.UInt64 => t == typeof(ulong[]),
                GgufValueType.Int64 => t == typeof(long[]),
                GgufValueType.Float64 => t == typeof(double[]),
                GgufValueType.Array => t == typeof(GgufValue[]) && depth + 1 < GgufFile.MaxArrayDepth,
                _ => false,
            },
            _ => false,
        };
        if (!ok) throw new ArgumentException($"metadata {key}: value {v.Value?.GetType().Name ?? "null"} does not match type {v.Type}/{v.ElementType} (or arrays nest too deep)");
        if (v.Value is GgufValue[] nested)
        {
            foreach (var item in nested)
            {
                if (item is null || item.Type != GgufValueType.Array)
                    throw new ArgumentException($"metadata {key}: items of a nested array must themselves be arrays");
                Validate(item, key, depth + 1);
            }
        }
    }

    /// <summary>Forwards writes and counts bytes, for padding relative to the start of the GGUF stream.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }
        public override void WriteByte(byte value)
        {
            inner.WriteByte(value);
            Written++;
        }
    }

    /// <summary>What a streamed tensor's callback writes into: refuses bytes beyond the tensor's size.</summary>
    private sealed class TensorStream(Stream inner, string name, long size) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.Length > size - Written)
                throw new InvalidOperationException($"tensor {name}: writeData wrote more than the tensor's {size} bytes");
            inner.Write(buffer);
            Written += buffer.Length;
        }
        public override void WriteByte(byte value) => Write([value]);
    }
}
