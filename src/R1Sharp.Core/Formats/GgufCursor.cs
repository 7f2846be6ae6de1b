// A bounds-checked little-endian reader over mapped GGUF bytes: every read checks the hard end first
// and names the field and its byte offset when it cannot be satisfied.
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace R1Sharp.Formats;

internal unsafe ref struct GgufCursor
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    private readonly byte* _base;
    private readonly long _end;
    private long _pos;

    public GgufCursor(byte* @base, long length)
    {
        _base = @base;
        _end = length;
        _pos = 0;
    }

    public readonly long Position => _pos;

    public readonly long Remaining => _end - _pos;

    /// <summary>Throws unless <paramref name="n"/> more bytes are available at the current position.</summary>
    public readonly void Need(long n, string field)
    {
        if (n > _end - _pos)
            throw new GgufFormatException(field, _pos, $"needs {n} bytes but only {_end - _pos} remain (truncated file?)");
    }

    public T Read<T>(string field) where T : unmanaged
    {
        Need(sizeof(T), field);
        T v = Unsafe.ReadUnaligned<T>(_base + _pos);
        _pos += sizeof(T);
        return v;
    }

    public byte ReadU8(string field) => Read<byte>(field);

    public uint ReadU32(string field) => Read<uint>(field);

    public ulong ReadU64(string field) => Read<ulong>(field);

    /// <summary>A u64 byte length followed by that many bytes of UTF-8, decoded straight from the mapping.</summary>
    public string ReadString(string field)
    {
        long at = _pos;
        ulong len = ReadU64(field);
        if (len > (ulong)Remaining)
            throw new GgufFormatException(field, at, $"string length {len} exceeds the {Remaining} bytes left in the file");
        if (len > GgufFile.MaxStringBytes)
            throw new GgufFormatException(field, at, $"string length {len} exceeds the limit of {GgufFile.MaxStringBytes}");
        var bytes = new ReadOnlySpan<byte>(_base + _pos, (int)len);
        if (!Utf8.IsValid(bytes))
            throw new GgufFormatException(field, _pos, "string is not valid UTF-8");
        _pos += (long)len;
        return len == 0 ? "" : Utf8NoBom.GetString(bytes);
    }

    /// <summary>Copies <paramref name="n"/> fixed-size values into a new managed array (used for metadata arrays only).</summary>
    public T[] ReadArray<T>(int n, string field) where T : unmanaged
    {
        long bytes = (long)n * sizeof(T);
        Need(bytes, field);
        var a = new T[n];
        fixed (T* dst = a) Buffer.MemoryCopy(_base + _pos, dst, bytes, bytes);
        _pos += bytes;
        return a;
    }
}
