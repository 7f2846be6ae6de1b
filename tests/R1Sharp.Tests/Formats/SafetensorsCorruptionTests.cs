// Corrupted and hostile safetensors files: each must either parse (and then describe only ranges inside the file that
// tile its data section) or throw SafetensorsFormatException with a one-line message; never another exception type.
using System.Buffers.Binary;
using System.Text;
using R1Sharp.Formats;
using R1Sharp.Sampling;

namespace R1Sharp.Tests.Formats;

public sealed class SafetensorsCorruptionTests
{
    private static byte[] File(string json, int dataBytes, bool pad = false)
    {
        byte[] j = Encoding.UTF8.GetBytes(pad ? json + "    " : json);
        var b = new byte[8 + j.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)j.Length);
        j.CopyTo(b, 8);
        for (int i = 0; i < dataBytes; i++) b[8 + j.Length + i] = (byte)(i * 7);
        return b;
    }

    private const string GoodJson =
        """{"__metadata__":{"format":"pt"},"a.weight":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[12,24]},"c":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[24,28]}}""";

    private static readonly byte[] Good = File(GoodJson, 28);

    private static SafetensorsFormatException? TryParse(byte[] bytes)
    {
        SafetensorsHeader h;
        try
        {
            h = SafetensorsHeader.Parse(bytes);
        }
        catch (SafetensorsFormatException e)
        {
            Assert.DoesNotContain('\n', e.Message);
            return e;
        }
        long data = bytes.Length - h.DataOffset, at = 0;
        foreach (var t in h.Tensors)
        {
            Assert.Equal(at, t.Begin);
            Assert.True(t.End <= data);
            Assert.Equal(t.ElementCount * SafetensorsHeader.ElementBytes(t.DType), t.ByteSize);
            at = t.End;
        }
        Assert.Equal(data, at);
        return null;
    }

    [Fact]
    public void GoodFileParses()
    {
        var h = SafetensorsHeader.Parse(Good);
        Assert.Equal(["a.weight", "b", "c"], h.Tensors.Select(t => t.Name));
        Assert.Equal(SafetensorsDType.BF16, h.ByName["a.weight"].DType);
        Assert.Equal([2L, 3L], h.ByName["a.weight"].Shape);
        Assert.Equal("pt", h.Metadata["format"]);
        Assert.Equal(8 + Encoding.UTF8.GetByteCount(GoodJson), h.DataOffset);
        Assert.Null(TryParse(File(GoodJson, 28, pad: true)));
    }

    [Fact]
    public void BuiltHeadersParseBack()
    {
        byte[] header = SafetensorsHeader.Build([("x", SafetensorsDType.F16, [5, 3]), ("y", SafetensorsDType.F8_E4M3, [7])]);
        Assert.Equal(0, header.Length % 8);
        var bytes = header.Concat(new byte[30 + 7]).ToArray();
        var h = SafetensorsHeader.Parse(bytes);
        Assert.Equal(30, h.ByName["x"].ByteSize);
        Assert.Equal(30, h.ByName["y"].Begin);
    }

    [Fact]
    public void EveryTruncationIsAFormatError()
    {
        for (int n = 0; n < Good.Length; n++)
            Assert.NotNull(TryParse(Good[..n]));
    }

    [Fact]
    public void RandomByteFlipsNeverEscapeAsAnotherException()
    {
        var rng = new Xoshiro256(42);
        int parsed = 0;
        for (int i = 0; i < 4000; i++)
        {
            var b = (byte[])Good.Clone();
            int flips = 1 + (int)(rng.Next() % 3);
            for (int f = 0; f < flips; f++) b[rng.Next() % (ulong)b.Length] ^= (byte)(1 << (int)(rng.Next() % 8));
            if (TryParse(b) is null) parsed++;
        }
        Assert.True(parsed > 0, "no mutation survived (flips in the tensor data must)");
    }

    public static TheoryData<string, byte[], string> Hostile => new()
    {
        { "length past the file", Patch(Good, b => BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)b.Length)), "past the end" },
        { "length over the limit", Patch(Good, b => BinaryPrimitives.WriteUInt64LittleEndian(b, 1UL << 40)), "exceeds the limit" },
        { "length 2^64-1", Patch(Good, b => BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue)), "exceeds the limit" },
        { "not an object", File("[1,2]", 0), "does not start with '{'" },
        { "invalid JSON", File("{\"a\":{\"dtype\":\"F32\",", 0), "not valid JSON" },
        // nesting deeper than the format's three levels is refused at the first level that should hold a value
        { "deep metadata", File("{\"__metadata__\":{\"x\":[[[[[[[[1]]]]]]]]}}", 0), "__metadata__.x: expected String" },
        { "deep shape", File("{\"a\":{\"shape\":[[[[[[[[1]]]]]]]]}}", 0), "a shape entry is not a non-negative integer" },
        { "unknown dtype", File("""{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,2]}}""", 2), "unknown dtype 'F12'" },
        { "size mismatch", File("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}""", 4), "needs 8 bytes" },
        { "overlap", File("""{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}""", 6), "overlaps" },
        { "gap", File("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}""", 6), "gap" },
        { "bytes after the last tensor", File("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", 5), "not described" },
        { "data past the end", File("""{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}""", 4), "runs past" },
        { "end before begin", File("""{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}""", 4), "end before they begin" },
        { "negative offset", File("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}""", 1), "not a non-negative integer" },
        { "negative dimension", File("""{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}""", 1), "not a non-negative integer" },
        { "shape overflow", File("""{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", 8), "overflows" },
        { "bytes overflow", File("""{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}""", 8), "more than 2^63" },
        { "duplicate name", File("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 2), "appears twice" },
        { "unknown field", File("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}""", 1), "unknown field 'x'" },
        { "missing offsets", File("""{"a":{"dtype":"U8","shape":[1]}}""", 1), "lacks data_offsets" },
        { "three offsets", File("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}""", 1), "two numbers" },
        { "trailing garbage", File(GoodJson + "x", 28), "after the header's JSON object" },
        { "metadata not strings", File("""{"__metadata__":{"a":1}}""", 0), "__metadata__.a" },
        { "too many dimensions", File("""{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}""", 1), "more than 8 dimensions" },
    };

    private static byte[] Patch(byte[] b, Action<byte[]> patch)
    {
        var c = (byte[])b.Clone();
        patch(c);
        return c;
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void HostileHeadersAreOneLineErrors(string what, byte[] bytes, string expected)
    {
        var e = TryParse(bytes);
        Assert.True(e is not null, $"{what}: parsed");
        Assert.Contains(expected, e!.Message);
    }

    [Fact]
    public void OpenNamesTheFileAndDropsPagesSafely()
    {
        string path = Path.Combine(Path.GetTempPath(), $"r1sharp-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            System.IO.File.WriteAllBytes(path, Good[..^3]);
            var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
            Assert.Contains(Path.GetFileName(path), e.Message);
            System.IO.File.WriteAllBytes(path, Good);
            using var f = SafetensorsFile.Open(path);
            var t = f.Header.ByName["b"];
            unsafe
            {
                var v = new ReadOnlySpan<byte>(f.TensorPointer(t), (int)t.ByteSize);
                Assert.Equal(Good.AsSpan((int)(f.Header.DataOffset + t.Begin), 12).ToArray(), v.ToArray());
            }
            f.Release(t);
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }
}
