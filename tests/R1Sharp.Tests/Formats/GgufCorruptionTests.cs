// Corrupted and hostile GGUF files: each must either open (and then be fully readable) or throw
// GgufFormatException; never another exception type, never a hang, never an out-of-memory.
using R1Sharp.Formats;

namespace R1Sharp.Tests.Formats;

public sealed class GgufCorruptionTests
{
    private const ulong Huge60 = 1UL << 60, Huge62 = 1UL << 62, Max63 = long.MaxValue, Max64 = ulong.MaxValue;
    private const uint F32 = 0, Q8_0 = 8;

    private static readonly byte[] Good = GgufTestData.SmallFile();

    /// <summary>Where the good file's tensor table ends (data section start) and its last tensor's data ends.</summary>
    private static readonly (long DataOffset, long DataEnd) GoodLayout = Layout(Good);

    private static (long, long) Layout(byte[] bytes)
    {
        using var f = GgufFile.OpenMemory(bytes);
        return (f.DataOffset, f.DataOffset + f.Tensors.Max(t => t.Offset + t.ByteSize));
    }

    /// <summary>Opens the bytes; if they parse, reads every metadata value and every tensor byte. Returns null when it opened,
    /// else the GgufFormatException; any other exception escapes and fails the test.</summary>
    private static GgufFormatException? TryOpen(byte[] bytes) => Outcome(() => GgufFile.OpenMemory(bytes));

    private static unsafe GgufFormatException? Outcome(Func<GgufFile> open)
    {
        GgufFile f;
        try
        {
            f = open();
        }
        catch (GgufFormatException ex)
        {
            Assert.StartsWith("bad GGUF", ex.Message);
            return ex;
        }
        using (f)
        {
            Exercise(f);
        }
        return null;
    }

    private static unsafe void Exercise(GgufFile f)
    {
        Assert.True(f.DataOffset % f.Alignment == 0);
        foreach (var (key, value) in f.Metadata)
        {
            _ = value.ToString();
            _ = value.AsDouble();
            Try(() => f.GetString(key));
            Try(() => f.GetInt(key));
            Try(() => f.GetFloat(key));
            Try(() => f.GetBool(key));
            Try(() => f.GetStringArray(key));
            Try(() => f.GetInt32Array(key));
            Try(() => f.GetFloat32Array(key));
        }
        long sum = 0;
        foreach (var t in f.Tensors)
        {
            Assert.Same(t, f.GetTensor(t.Name));
            Assert.True(t.Offset >= 0 && f.DataOffset + t.Offset + t.ByteSize <= f.FileSize);
            byte* p = f.TensorPointer(t);
            foreach (byte b in f.TensorBytes(t)) sum += b;
            if (t.ByteSize > 0) sum += p[t.ByteSize - 1];
        }
        GC.KeepAlive(sum);
    }

    private static void Try(Func<object?> read)
    {
        try
        {
            read();
        }
        catch (GgufFormatException)
        {
        }
    }

    [Fact]
    public void GoodFile_Opens()
    {
        Assert.Null(TryOpen(Good));
        using var f = GgufFile.OpenMemory(Good);
        Assert.Equal(8, f.Metadata.Count);
        Assert.Equal(3, f.Tensors.Count);
    }

    [Fact]
    public void Truncation_AtEveryByte_IsRejectedUntilTheLastTensorEnds()
    {
        var (_, dataEnd) = GoodLayout;
        for (int len = 0; len < Good.Length; len++)
        {
            var ex = TryOpen(Good.AsSpan(0, len).ToArray());
            if (len < dataEnd) Assert.True(ex is not null, $"truncated to {len} bytes but opened");
            else Assert.True(ex is null, $"truncated to {len} bytes (only padding lost) but rejected: {ex?.Message}");
        }
    }

    [Fact]
    public void Truncation_ReportsTheFieldAndOffsetBeingRead()
    {
        var ex = TryOpen(Good.AsSpan(0, 6).ToArray())!;
        Assert.Equal("header.version", ex.Field);
        Assert.Equal(4, ex.Offset);
        Assert.Contains("needs 4 bytes but only 2 remain", ex.Message);

        ex = TryOpen(Good.AsSpan(0, 20).ToArray())!;
        Assert.Equal("header.kv_count", ex.Field);
        Assert.Equal(16, ex.Offset);

        ex = TryOpen(Good.AsSpan(0, (int)GoodLayout.DataOffset - 1).ToArray())!;
        Assert.StartsWith("tensor_info[", ex.Field);
    }

    [Fact(Timeout = 60_000)]
    public async Task RandomByteFlips_InHeaderAndTable_OpenOrThrowFormatException()
    {
        await Task.Run(() =>
        {
            var rng = new Random(20250101);
            int tableEnd = (int)GoodLayout.DataOffset, opened = 0, rejected = 0;
            for (int i = 0; i < 3000; i++)
            {
                var b = (byte[])Good.Clone();
                int flips = 1 + rng.Next(3);
                for (int k = 0; k < flips; k++)
                {
                    int pos = rng.Next(tableEnd);
                    b[pos] = rng.Next(3) switch
                    {
                        0 => (byte)(b[pos] ^ (1 << rng.Next(8))),
                        1 => (byte)rng.Next(256),
                        _ => 0xFF,
                    };
                }
                if (TryOpen(b) is null) opened++; else rejected++;
            }
            Assert.True(rejected > 1000, $"only {rejected} of 3000 corrupted files rejected");
            Assert.True(opened > 0, "no flip left a readable file; the test is not exercising successful opens");
        });
    }

    [Fact(Timeout = 60_000)]
    public async Task RandomAbsurdWords_InHeaderAndTable_OpenOrThrowFormatException()
    {
        ulong[] absurd = [0, 1, 3, 5, 31, 33, 0xFF, 1UL << 31, uint.MaxValue, 1UL << 32, Huge60, Huge62, Max63, Max64, Max64 - 31];
        await Task.Run(() =>
        {
            var rng = new Random(7);
            int tableEnd = (int)GoodLayout.DataOffset, rejected = 0;
            for (int i = 0; i < 2000; i++)
            {
                var b = (byte[])Good.Clone();
                int pos = rng.Next(tableEnd - 8);
                ulong v = absurd[rng.Next(absurd.Length)];
                if (rng.Next(2) == 0) BitConverter.TryWriteBytes(b.AsSpan(pos, 8), v);
                else BitConverter.TryWriteBytes(b.AsSpan(pos, 4), (uint)v);
                if (TryOpen(b) is not null) rejected++;
            }
            Assert.True(rejected > 1000, $"only {rejected} of 2000 corrupted files rejected");
        });
    }

    [Fact]
    public void CorruptFiles_ThroughTheMappedPath_BehaveLikeMemory()
    {
        string path = GgufTestData.TempPath("corrupt");
        try
        {
            var variants = new List<byte[]>();
            foreach (int len in new[] { 1, 3, 4, 8, 16, 23, 24, 40, (int)GoodLayout.DataOffset - 1, (int)GoodLayout.DataOffset, Good.Length - 1, Good.Length })
                variants.Add(Good.AsSpan(0, len).ToArray());
            var rng = new Random(99);
            for (int i = 0; i < 40; i++)
            {
                var b = (byte[])Good.Clone();
                b[rng.Next((int)GoodLayout.DataOffset)] ^= (byte)(1 << rng.Next(8));
                variants.Add(b);
            }
            foreach (var b in variants)
            {
                File.WriteAllBytes(path, b);
                var mapped = Outcome(() => GgufFile.Open(path));
                var memory = TryOpen(b);
                Assert.Equal(memory?.Message, mapped?.Message);
            }

            File.WriteAllBytes(path, []);
            var empty = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
            Assert.Equal("header.magic", empty.Field);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // ---- hand-made hostile files ----

    /// <summary>A KV section with one string KV, then <paramref name="tensors"/> as a tensor table, aligned, then data.</summary>
    private static byte[] WithTensors(int dataBytes, params (string Name, ulong[] Ne, uint Type, ulong Offset)[] tensors)
    {
        var r = new RawGguf().Header((ulong)tensors.Length, 1).Kv("general.architecture", GgufValueType.String).Str("llama");
        foreach (var t in tensors) r.Tensor(t.Name, t.Ne, t.Type, t.Offset);
        return r.PadTo(32).Zeros(dataBytes).ToArray();
    }

    /// <summary>One KV named k whose type and value bytes come from <paramref name="value"/>, followed by some slack.</summary>
    private static byte[] WithKv(GgufValueType type, Action<RawGguf> value)
    {
        var r = new RawGguf().Header(0, 1).Kv("k", type);
        value(r);
        return r.Zeros(64).ToArray();
    }

    private static byte[] Nested(int depth)
    {
        var r = new RawGguf().Header(0, 1).Kv("k", GgufValueType.Array);
        for (int i = 0; i < depth; i++) r.U32((uint)GgufValueType.Array).U64(1);
        return r.U32((uint)GgufValueType.UInt8).U64(0).ToArray();
    }

    private static readonly Dictionary<string, (Func<byte[]> Build, string Field, string Says)> Hostile = new()
    {
        ["empty"] = (() => [], "header.magic", "needs 4 bytes"),
        ["3 bytes"] = (() => "GGU"u8.ToArray(), "header.magic", "needs 4 bytes"),
        ["bad magic"] = (() => new RawGguf().U32(0x4C4D4747).U32(3).U64(0).U64(0).ToArray(), "header.magic", "expected 0x46554747"),
        ["version 0"] = (() => new RawGguf().Header(0, 0, 0).ToArray(), "header.version", "unsupported version 0"),
        ["version 1"] = (() => new RawGguf().Header(0, 0, 1).ToArray(), "header.version", "version 1"),
        ["version 99"] = (() => new RawGguf().Header(0, 0, 99).ToArray(), "header.version", "unsupported version 99"),
        ["big-endian"] = (() => new RawGguf().Header(0, 0, 0x03000000).ToArray(), "header.version", "big-endian"),
        ["tensor count 2^62"] = (() => new RawGguf().Header(Huge62, 0).Zeros(100).ToArray(), "header.tensor_count", "cannot fit"),
        ["tensor count 2^64-1"] = (() => new RawGguf().Header(Max64, 0).Zeros(100).ToArray(), "header.tensor_count", "cannot fit"),
        ["kv count 2^62"] = (() => new RawGguf().Header(0, Huge62).Zeros(100).ToArray(), "header.kv_count", "cannot fit"),
        ["kv count 2^64-1"] = (() => new RawGguf().Header(0, Max64).Zeros(100).ToArray(), "header.kv_count", "cannot fit"),
        ["kv count one too many"] = (() => new RawGguf().Header(0, 100 / 14 + 1).Zeros(100).ToArray(), "header.kv_count", "cannot fit"),
        ["key length 2^63-1"] = (() => new RawGguf().Header(0, 1).U64(Max63).Zeros(64).ToArray(), "kv[0].key", "string length"),
        ["key length 2^64-1"] = (() => new RawGguf().Header(0, 1).U64(Max64).Zeros(64).ToArray(), "kv[0].key", "string length"),
        ["empty key"] = (() => new RawGguf().Header(0, 1).Str("").U32(0).U8(1).Zeros(8).ToArray(), "kv[0].key", "empty key"),
        ["duplicate key"] = (() => new RawGguf().Header(0, 2).Kv("a", GgufValueType.UInt8).U8(1).Kv("a", GgufValueType.UInt8).U8(2).ToArray(), "kv[1].key", "duplicate key"),
        ["key invalid utf-8"] = (() => new RawGguf().Header(0, 1).Str([0x61, 0xFF]).U32(0).U8(1).ToArray(), "kv[0].key", "UTF-8"),
        ["key overlong utf-8"] = (() => new RawGguf().Header(0, 1).Str([0xC0, 0x80]).U32(0).U8(1).ToArray(), "kv[0].key", "UTF-8"),
        ["key surrogate utf-8"] = (() => new RawGguf().Header(0, 1).Str([0xED, 0xA0, 0x80]).U32(0).U8(1).ToArray(), "kv[0].key", "UTF-8"),
        ["key cut utf-8"] = (() => new RawGguf().Header(0, 1).Str([0x61, 0xE2, 0x82]).U32(0).U8(1).ToArray(), "kv[0].key", "UTF-8"),
        ["value type 13"] = (() => WithKv((GgufValueType)13, r => r.U8(0)), "kv[k].type", "unknown value type 13"),
        ["value type 2^32-1"] = (() => WithKv((GgufValueType)uint.MaxValue, r => r.U8(0)), "kv[k].type", "unknown value type"),
        ["string length 2^63-1"] = (() => WithKv(GgufValueType.String, r => r.U64(Max63)), "kv[k].value", "string length"),
        ["string invalid utf-8"] = (() => WithKv(GgufValueType.String, r => r.Str([0x80])), "kv[k].value", "UTF-8"),
        ["bool 2"] = (() => WithKv(GgufValueType.Bool, r => r.U8(2)), "kv[k].value", "bool"),
        ["array element type 13"] = (() => WithKv(GgufValueType.Array, r => r.U32(13).U64(0)), "kv[k].value", "element type 13"),
        ["array u8 length 2^60"] = (() => WithKv(GgufValueType.Array, r => r.U32(0).U64(Huge60)), "kv[k].value", "cannot fit"),
        ["array u64 length 2^62"] = (() => WithKv(GgufValueType.Array, r => r.U32(10).U64(Huge62)), "kv[k].value", "cannot fit"),
        ["array length 2^64-1"] = (() => WithKv(GgufValueType.Array, r => r.U32(0).U64(Max64)), "kv[k].value", "cannot fit"),
        ["array of strings length 2^60"] = (() => WithKv(GgufValueType.Array, r => r.U32(8).U64(Huge60)), "kv[k].value", "cannot fit"),
        ["array of arrays length 2^60"] = (() => WithKv(GgufValueType.Array, r => r.U32(9).U64(Huge60)), "kv[k].value", "cannot fit"),
        ["array one element short"] = (() => new RawGguf().Header(0, 1).Kv("k", GgufValueType.Array).U32(5).U64(3).U32(1).U32(2).ToArray(), "kv[k].value", "cannot fit"),
        ["string array element length huge"] = (() => WithKv(GgufValueType.Array, r => r.U32(8).U64(2).Str("a").U64(Max63)), "kv[k].value", "string length"),
        ["string array element invalid utf-8"] = (() => WithKv(GgufValueType.Array, r => r.U32(8).U64(2).Str("a").Str([0xFE])), "kv[k].value", "UTF-8"),
        ["bool array holding 7"] = (() => WithKv(GgufValueType.Array, r => r.U32(7).U64(2).U8(1).U8(7)), "kv[k].value", "bool"),
        ["nested inner length huge"] = (() => WithKv(GgufValueType.Array, r => r.U32(9).U64(1).U32(4).U64(Huge60)), "kv[k].value", "cannot fit"),
        ["arrays nested 100 deep"] = (() => Nested(100), "kv[k].value", "nested deeper"),
        ["arrays nested 100000 deep"] = (() => Nested(100_000), "kv[k].value", "nested deeper"),
        ["alignment 0"] = (() => WithAlignment(0), "kv[general.alignment].value", "power of two"),
        ["alignment 3"] = (() => WithAlignment(3), "kv[general.alignment].value", "power of two"),
        ["alignment 2^31"] = (() => WithAlignment(1u << 31), "kv[general.alignment].value", "power of two"),
        ["alignment as string"] = (() => new RawGguf().Header(0, 1).Kv("general.alignment", GgufValueType.String).Str("32").ToArray(), "kv[general.alignment].value", "expected an integer"),
        ["alignment as -32"] = (() => new RawGguf().Header(0, 1).Kv("general.alignment", GgufValueType.Int32).U32(unchecked((uint)-32)).ToArray(), "kv[general.alignment].value", "power of two"),
        ["n_dims 0"] = (() => WithTensors(64, ("t", [], F32, 0)), "tensor_info[0].n_dims", "n_dims 0"),
        ["n_dims 5"] = (() => WithTensors(64, ("t", [1, 1, 1, 1, 1], F32, 0)), "tensor_info[0].n_dims", "n_dims 5 exceeds 4"),
        ["n_dims 100"] = (() => new RawGguf().Header(1, 0).Str("t").U32(100).Zeros(1000).ToArray(), "tensor_info[0].n_dims", "n_dims 100 exceeds 4"),
        ["n_dims 2^32-1"] = (() => new RawGguf().Header(1, 0).Str("t").U32(uint.MaxValue).Zeros(100).ToArray(), "tensor_info[0].n_dims", "exceeds 4"),
        ["dim 0"] = (() => WithTensors(64, ("t", [4, 0], F32, 0)), "tensor_info[0].ne[1]", "dimension is 0"),
        ["dims overflow"] = (() => WithTensors(64, ("t", [1UL << 31, 1UL << 31, 4], F32, 0)), "tensor_info[0].ne[2]", "overflow"),
        ["dim 2^63"] = (() => WithTensors(64, ("t", [1UL << 63], F32, 0)), "tensor_info[0].ne[0]", "overflow"),
        ["dim 2^64-1"] = (() => WithTensors(64, ("t", [4, Max64], F32, 0)), "tensor_info[0].ne[1]", "overflow"),
        ["byte size overflow"] = (() => WithTensors(64, ("t", [Huge62], F32, 0)), "tensor_info[0].ne[0]", "byte size overflows"),
        ["type 99"] = (() => WithTensors(64, ("t", [4], 99, 0)), "tensor_info[0].type", "unknown tensor type 99"),
        ["type 4 (removed Q4_2)"] = (() => WithTensors(64, ("t", [32], 4, 0)), "tensor_info[0].type", "unknown tensor type 4"),
        ["type 2^32-1"] = (() => WithTensors(64, ("t", [4], uint.MaxValue, 0)), "tensor_info[0].type", "unknown tensor type"),
        ["ne0 not a block multiple"] = (() => WithTensors(64, ("t", [33], Q8_0, 0)), "tensor_info[0].ne[0]", "block size 32"),
        ["misaligned offset"] = (() => WithTensors(64, ("t", [4], F32, 16)), "tensor_info[0].offset", "not a multiple of the alignment"),
        ["offset past end"] = (() => WithTensors(64, ("t", [4], F32, 1024)), "tensor_info[0].offset", "past the end"),
        ["offset 2^63-32"] = (() => WithTensors(64, ("t", [4], F32, Max63 - 31)), "tensor_info[0].offset", "past the end"),
        ["offset 2^64-32"] = (() => WithTensors(64, ("t", [4], F32, Max64 - 31)), "tensor_info[0].offset", "past the end"),
        ["data one byte short"] = (() => WithTensors(15, ("t", [4], F32, 0)), "tensor_info[0].offset", "past the end"),
        ["huge tensor past end"] = (() => WithTensors(64, ("t", [1UL << 40, 1UL << 20], F32, 0)), "tensor_info[0].offset", "past the end"),
        ["same offset"] = (() => WithTensors(64, ("a", [4], F32, 0), ("b", [4], F32, 0)), "tensor_info[1].offset", "overlaps \"a\""),
        ["partial overlap"] = (() => WithTensors(128, ("a", [16], F32, 0), ("b", [8], F32, 32)), "tensor_info[1].offset", "overlaps \"a\""),
        ["overlap out of order"] = (() => WithTensors(128, ("a", [8], F32, 64), ("b", [24], F32, 0)), "tensor_info[0].offset", "overlaps \"b\""),
        ["duplicate tensor name"] = (() => WithTensors(64, ("t", [4], F32, 0), ("t", [4], F32, 32)), "tensor_info[1].name", "duplicate tensor name"),
        ["empty tensor name"] = (() => WithTensors(64, ("", [4], F32, 0)), "tensor_info[0].name", "empty tensor name"),
        ["tensor name invalid utf-8"] = (() => new RawGguf().Header(1, 0).Str([0xC3]).U32(1).U64(4).U32(0).U64(0).PadTo(32).Zeros(16).ToArray(), "tensor_info[0].name", "UTF-8"),
        ["tensor table short"] = (() => new RawGguf().Header(2, 0).Tensor("t", [4], F32, 0).U64(1000).Zeros(40).ToArray(), "tensor_info[1].name", "string length 1000"),
    };

    private static byte[] WithAlignment(uint alignment) =>
        new RawGguf().Header(0, 1).Kv("general.alignment", GgufValueType.UInt32).U32(alignment).ToArray();

    public static TheoryData<string> HostileCases => new(Hostile.Keys);

    [Theory]
    [MemberData(nameof(HostileCases))]
    public void HostileFile_IsRejected_NamingFieldAndOffset(string name)
    {
        var (build, field, says) = Hostile[name];
        var bytes = build();
        var ex = TryOpen(bytes);
        Assert.NotNull(ex);
        Assert.Equal(field, ex.Field);
        Assert.Contains(says, ex.Message);
        Assert.InRange(ex.Offset, 0, bytes.Length);
        Assert.StartsWith($"bad GGUF at byte {ex.Offset} ({field}): ", ex.Message);
    }

    [Fact]
    public void HostileFile_OffsetPointsAtTheField()
    {
        // header(24) + key "general.architecture" (8+20) + type(4) + "llama" (8+5) = 69; tensor "t": name 8+1, n_dims at 78.
        var ex = TryOpen(WithTensors(64, ("t", [1, 1, 1, 1, 1], F32, 0)))!;
        Assert.Equal(78, ex.Offset);
        Assert.Equal("bad GGUF at byte 78 (tensor_info[0].n_dims): n_dims 5 exceeds 4", ex.Message);
        ex = TryOpen(WithTensors(64, ("t", [4, 0], F32, 0)))!;
        Assert.Equal(82 + 8, ex.Offset);
        ex = TryOpen(new RawGguf().U32(0x4C4D4747).U32(3).U64(0).U64(0).ToArray())!;
        Assert.Equal("bad GGUF at byte 0 (header.magic): magic is 0x4C4D4747 (\"GGML\"), expected 0x46554747 (\"GGUF\"); not a GGUF file", ex.Message);
        ex = TryOpen(WithTensors(64, ("t", [4], F32, 16)))!;
        Assert.Equal(82 + 8 + 4, ex.Offset);
    }

    public static TheoryData<string> ValidOddities => new(["header only", "n_dims 4", "trailing bytes", "data out of table order", "alignment 1", "alignment 4096", "version 2", "every known type"]);

    [Theory]
    [MemberData(nameof(ValidOddities))]
    public void UnusualButValidFile_Opens(string name)
    {
        byte[] bytes = name switch
        {
            "header only" => new RawGguf().Header(0, 0).ToArray(),
            "n_dims 4" => WithTensors(64, ("t", [2, 2, 2, 2], F32, 0)),
            "trailing bytes" => WithTensors(1000, ("t", [4], F32, 0)),
            "data out of table order" => WithTensors(64, ("a", [4], F32, 32), ("b", [8], F32, 0)),
            "alignment 1" => new RawGguf().Header(2, 1).Kv("general.alignment", GgufValueType.UInt32).U32(1)
                .Tensor("a", [3], 1, 0).Tensor("b", [1], 0, 6).Zeros(10).ToArray(),
            "alignment 4096" => new RawGguf().Header(1, 1).Kv("general.alignment", GgufValueType.UInt64).U64(4096)
                .Tensor("a", [3], 0, 0).PadTo(4096).Zeros(12).ToArray(),
            "version 2" => new RawGguf().Header(0, 1, 2).Kv("a", GgufValueType.String).Str("b").ToArray(),
            "every known type" => GgufTestData.ToBytes(AllTypesWriter()),
            _ => throw new ArgumentException(name),
        };
        Assert.Null(TryOpen(bytes));
    }

    private static GgufWriter AllTypesWriter()
    {
        var w = new GgufWriter();
        foreach (var t in Enum.GetValues<R1Sharp.Tensors.GgmlType>())
        {
            int block = R1Sharp.Tensors.GgmlTypeInfo.BlockSize(t);
            w.AddTensor(GgmlTypeNameFor(t), t, [block * 2, 3], new byte[R1Sharp.Tensors.GgmlTypeInfo.BlockBytes(t) * 2 * 3]);
        }
        return w;
    }

    private static string GgmlTypeNameFor(R1Sharp.Tensors.GgmlType t) => "t." + R1Sharp.Tensors.GgmlTypeInfo.Name(t);
}

public sealed class GgufHugeFileTests
{
    /// <summary>
    /// Counts and lengths that do fit in a huge file (a 16 GiB sparse file of zeros) must still not size an allocation:
    /// they are refused by the sanity caps, or the parser fails on the first entry without having preallocated.
    /// </summary>
    [Fact]
    public void ForgedCountsInAHugeSparseFile_FailCleanly()
    {
        if (!OperatingSystem.IsLinux()) return; // relies on ftruncate making a sparse file
        string path = GgufTestData.TempPath("sparse");
        try
        {
            using (var fs = new FileStream(path, FileMode.CreateNew)) fs.SetLength(16L << 30);
            void Case(byte[] head, string field, string says)
            {
                using (var fs = new FileStream(path, FileMode.Open, FileAccess.Write)) fs.Write(head);
                var ex = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
                Assert.Equal(field, ex.Field);
                Assert.Contains(says, ex.Message);
            }
            // Each head is at least as long as the previous one, so no stale bytes remain from an earlier case.
            Case(new RawGguf().Header(GgufFile.MaxTensors, 0).ToArray(), "tensor_info[0].name", "empty tensor name");
            Case(new RawGguf().Header(GgufFile.MaxTensors + 1UL, 0).ToArray(), "header.tensor_count", "exceeds the limit");
            Case(new RawGguf().Header(0, GgufFile.MaxKvs).ToArray(), "kv[0].key", "empty key");
            Case(new RawGguf().Header(0, GgufFile.MaxKvs + 1UL).ToArray(), "header.kv_count", "exceeds the limit");
            Case(new RawGguf().Header(0, 1).Kv("k", GgufValueType.Array).U32(0).U64(1UL << 33).ToArray(), "kv[k].value", "exceeds the limit");
            Case(new RawGguf().Header(0, 1).Kv("k", GgufValueType.Array).U32(8).U64(1UL << 30).ToArray(), "kv[k].value", "exceeds the limit");
            Case(new RawGguf().Header(0, 1).Kv("k", GgufValueType.Array).U32(9).U64(1UL << 30).ToArray(), "kv[k].value", "exceeds the limit");
            Case(new RawGguf().Header(0, 1).Kv("k", GgufValueType.String).U64(1UL << 31).Zeros(9).ToArray(), "kv[k].value", "exceeds the limit");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
