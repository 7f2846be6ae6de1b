// Byte-level GGUF builder for hand-made (and deliberately broken) files: every field is written exactly as given.
using System.Buffers.Binary;
using System.Text;
using R1Sharp.Formats;

namespace R1Sharp.Tests.Formats;

internal sealed class RawGguf
{
    private readonly MemoryStream _ms = new();

    public long Length => _ms.Length;

    public RawGguf U8(byte v)
    {
        _ms.WriteByte(v);
        return this;
    }

    public RawGguf U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _ms.Write(b);
        return this;
    }

    public RawGguf U64(ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        _ms.Write(b);
        return this;
    }

    public RawGguf Bytes(params byte[] b)
    {
        _ms.Write(b);
        return this;
    }

    public RawGguf Zeros(int n) => Bytes(new byte[n]);

    /// <summary>A GGUF string: u64 byte length, then the bytes (not necessarily valid UTF-8).</summary>
    public RawGguf Str(byte[] utf8) => U64((ulong)utf8.Length).Bytes(utf8);

    public RawGguf Str(string s) => Str(Encoding.UTF8.GetBytes(s));

    public RawGguf Header(ulong tensorCount, ulong kvCount, uint version = 3) =>
        U32(GgufFile.Magic).U32(version).U64(tensorCount).U64(kvCount);

    public RawGguf Kv(string key, GgufValueType type) => Str(key).U32((uint)type);

    public RawGguf Tensor(string name, ulong[] ne, uint type, ulong offset)
    {
        Str(name).U32((uint)ne.Length);
        foreach (ulong d in ne) U64(d);
        return U32(type).U64(offset);
    }

    public RawGguf PadTo(int alignment) => Zeros((int)((alignment - _ms.Length % alignment) % alignment));

    public byte[] ToArray() => _ms.ToArray();
}
