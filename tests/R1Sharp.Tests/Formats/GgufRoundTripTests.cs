// Writer → file → reader: every metadata type, several tensor types, alignments and versions, streamed tensors.
using R1Sharp.Formats;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Formats;

public sealed class GgufRoundTripTests
{
    [Theory]
    [InlineData(3u, 32)]
    [InlineData(2u, 32)]
    [InlineData(3u, 64)]
    [InlineData(2u, 64)]
    [InlineData(3u, 1)]
    [InlineData(3u, 4096)]
    public void RoundTrip_AllMetadataTypesAndTensors(uint version, int alignment)
    {
        string path = GgufTestData.TempPath("rt");
        try
        {
            GgufTestData.FullWriter(version, alignment).Write(path);
            using var f = GgufFile.Open(path);

            Assert.Equal(version, f.Version);
            Assert.Equal(alignment, f.Alignment);
            Assert.Equal(new FileInfo(path).Length, f.FileSize);
            Assert.Equal(0, f.DataOffset % alignment);

            var expectedKeys = GgufTestData.AllMetadata.Select(kv => kv.Key).ToList();
            if (alignment != 32) expectedKeys.Insert(0, "general.alignment");
            Assert.Equal(expectedKeys, f.Metadata.Keys.ToList());
            foreach (var (key, value) in GgufTestData.AllMetadata)
                Assert.True(GgufTestData.ValueEquals(value, f.Metadata[key]), $"{key}: wrote {value}, read {f.Metadata[key]}");
            if (alignment != 32) Assert.Equal((long)alignment, f.GetInt("general.alignment"));

            var sample = GgufTestData.SampleTensors;
            Assert.Equal(sample.Length, f.Tensors.Count);
            for (int i = 0; i < sample.Length; i++)
            {
                var t = f.Tensors[i];
                Assert.Equal(sample[i].Name, t.Name);
                Assert.Equal(sample[i].Type, t.Type);
                Assert.Equal(sample[i].Shape, t.Shape);
                Assert.Equal(0, t.Offset % alignment);
                Assert.Same(t, f.GetTensor(t.Name));
                Assert.True(GgufTestData.Bytes(t.ByteSize, i).AsSpan().SequenceEqual(f.TensorBytes(t)), t.Name);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void RoundTrip_MappedFileAndMemoryAgree()
    {
        var bytes = GgufTestData.ToBytes(GgufTestData.FullWriter());
        string path = GgufTestData.TempPath("agree");
        File.WriteAllBytes(path, bytes);
        try
        {
            using var mapped = GgufFile.Open(path);
            using var mem = GgufFile.OpenMemory(bytes);
            Assert.Equal(mapped.DataOffset, mem.DataOffset);
            Assert.Equal(mapped.Metadata.Keys, mem.Metadata.Keys);
            for (int i = 0; i < mapped.Tensors.Count; i++)
            {
                Assert.Equal(mapped.Tensors[i].Offset, mem.Tensors[i].Offset);
                Assert.True(mapped.TensorBytes(mapped.Tensors[i]).SequenceEqual(mem.TensorBytes(mem.Tensors[i])));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public unsafe void CopyToMemory_KeepsEveryTensorsBytesInAHugePageAlignedCopy(int threads)
    {
        var bytes = GgufTestData.ToBytes(GgufTestData.FullWriter());
        string path = GgufTestData.TempPath("inmem");
        File.WriteAllBytes(path, bytes);
        try
        {
            using var mem = GgufFile.OpenMemory(bytes);
            var f = GgufFile.Open(path);
            Assert.False(f.InMemory);
            using var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => f.CopyToMemory(threads, cancelled.Token));
            using var copy = f.CopyToMemory(threads);
            Assert.True(copy.InMemory);
            Assert.Equal(f.RepackWeights, copy.RepackWeights);
            Assert.Equal(0, (long)copy.TensorPointer(copy.Tensors[0]) - copy.DataOffset - copy.Tensors[0].Offset & ((2 << 20) - 1));
            for (int i = 0; i < copy.Tensors.Count; i++)
            {
                // the mapping stays readable (its copied pages come back from the page cache) and equal to the copy
                Assert.True(copy.TensorBytes(copy.Tensors[i]).SequenceEqual(mem.TensorBytes(mem.Tensors[i])));
                Assert.True(f.TensorBytes(f.Tensors[i]).SequenceEqual(mem.TensorBytes(mem.Tensors[i])));
            }
            using (var again = copy.CopyToMemory(threads)) // a copy of a copy
                Assert.True(again.TensorBytes(again.Tensors[^1]).SequenceEqual(mem.TensorBytes(mem.Tensors[^1])));
            // the copy outlives the mapping: the file can be replaced while the copy is in use
            f.Dispose();
            File.Delete(path);
            Assert.True(copy.TensorBytes(copy.Tensors[^1]).SequenceEqual(mem.TensorBytes(mem.Tensors[^1])));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public unsafe void TensorPointer_PointsIntoTheMappingAtDataOffsetPlusOffset()
    {
        var bytes = GgufTestData.ToBytes(GgufTestData.FullWriter(alignment: 64));
        using var f = GgufFile.OpenMemory(bytes);
        var t = f.GetTensor("blk.0.ffn_up.weight");
        byte* p = f.TensorPointer(t);
        fixed (byte* q = f.TensorBytes(t)) Assert.True(p == q);
        Assert.Equal(bytes[(int)(f.DataOffset + t.Offset)], *p);
        Assert.Equal(34 * 2 * 3, t.ByteSize);
        Assert.Equal(64 * 3, t.ElementCount);
        Assert.Equal(3, t.Rows);
    }

    [Fact]
    public unsafe void TensorAccess_RefusesForeignTensorsAndDisposedFiles()
    {
        var f = GgufFile.OpenMemory(GgufTestData.ToBytes(GgufTestData.FullWriter()));
        var t = f.Tensors[0];
        Assert.Throws<ArgumentException>(() => f.TensorBytes(t with { Offset = f.FileSize }));
        Assert.Throws<ArgumentException>(() => f.TensorBytes(t with { Shape = [1L << 40] }));
        f.Dispose();
        f.Dispose();
        Assert.Throws<ObjectDisposedException>(() => f.TensorBytes(t));
    }

    [Fact]
    public void StreamedTensor_RoundTrips()
    {
        var data = GgufTestData.Bytes(34 * 8 * 5, 42);
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("llama"));
        w.AddTensor("small", GgmlType.F32, [3], GgufTestData.Bytes(12, 7));
        w.AddTensor("streamed", GgmlType.Q8_0, [256, 5], s =>
        {
            for (int off = 0; off < data.Length; off += 100) s.Write(data, off, Math.Min(100, data.Length - off));
        });
        w.AddTensor("after", GgmlType.F16, [2], s => { s.WriteByte(1); s.WriteByte(2); s.WriteByte(3); s.WriteByte(4); });
        string path = GgufTestData.TempPath("stream");
        try
        {
            w.Write(path);
            using var f = GgufFile.Open(path);
            Assert.True(data.AsSpan().SequenceEqual(f.TensorBytes(f.GetTensor("streamed"))));
            Assert.Equal(new byte[] { 1, 2, 3, 4 }, f.TensorBytes(f.GetTensor("after")).ToArray());
            Assert.True(GgufTestData.Bytes(12, 7).AsSpan().SequenceEqual(f.TensorBytes(f.GetTensor("small"))));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(+1)]
    [InlineData(-64)]
    public void StreamedTensor_WrongByteCount_Fails_AndLeavesNoFile(int delta)
    {
        var w = new GgufWriter();
        w.AddTensor("t", GgmlType.F32, [16], s => s.Write(new byte[64 + delta]));
        string path = GgufTestData.TempPath("wrong");
        var ex = Assert.Throws<InvalidOperationException>(() => w.Write(path));
        Assert.Contains("tensor t", ex.Message);
        Assert.False(File.Exists(path));
        string dir = Path.GetDirectoryName(path)!;
        Assert.Empty(Directory.GetFiles(dir, Path.GetFileName(path) + "*"));
    }

    [Fact]
    public void SetMetadata_ReplacesInPlace()
    {
        var w = new GgufWriter();
        w.SetMetadata("a", GgufValue.Of(1));
        w.SetMetadata("b", GgufValue.Of(2));
        w.SetMetadata("c", GgufValue.Of(3));
        w.SetMetadata("b", GgufValue.Of("two"));
        using var f = GgufFile.OpenMemory(GgufTestData.ToBytes(w));
        Assert.Equal(["a", "b", "c"], f.Metadata.Keys);
        Assert.Equal("two", f.GetString("b"));
        Assert.Empty(f.Tensors);
    }

    [Fact]
    public void LargeVocab_150kStrings_RoundTrips()
    {
        var tokens = new string[150_000];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = i % 7 == 0 ? $"Ġtok{i}é" : $"t{i}";
        var types = Enumerable.Range(0, tokens.Length).Select(i => i % 3).ToArray();
        var w = new GgufWriter();
        w.SetMetadata("tokenizer.ggml.tokens", GgufValue.Of(tokens));
        w.SetMetadata("tokenizer.ggml.token_type", GgufValue.Of(types));
        using var f = GgufFile.OpenMemory(GgufTestData.ToBytes(w));
        Assert.Equal(tokens, f.GetStringArray("tokenizer.ggml.tokens"));
        Assert.Equal(types, f.GetInt32Array("tokenizer.ggml.token_type"));
    }

    [Fact]
    public void TypedGetters_ConvertWhatIsUsable_AndNameTheKeyOtherwise()
    {
        using var f = GgufFile.OpenMemory(GgufTestData.ToBytes(GgufTestData.FullWriter()));
        Assert.Equal("qwen2", f.GetString("general.architecture"));
        Assert.Equal("qwen2", f.RequireString("general.architecture"));
        Assert.Equal(200L, f.GetInt("t.u8"));
        Assert.Equal(-100L, f.GetInt("t.i8"));
        Assert.Equal(4_000_000_000L, f.RequireInt("t.u32"));
        Assert.Equal(long.MinValue, f.GetInt("t.i64"));
        Assert.Equal(3.5, f.GetFloat("t.f32"));
        Assert.Equal(Math.PI, f.RequireFloat("t.f64"));
        Assert.Equal(60000.0, f.GetFloat("t.u16"));
        Assert.True(f.GetBool("t.bool.true"));
        Assert.False(f.GetBool("t.bool.false"));
        Assert.Equal(["a", "", "Ġthe", "🤖", "<think>"], f.GetStringArray("t.arr.string")!);
        Assert.Equal([int.MinValue, -1, 0, int.MaxValue], f.GetInt32Array("t.arr.i32")!);
        Assert.Equal([0, 1, 255], f.GetInt32Array("t.arr.u8")!);
        Assert.Equal([1.5f, -0.25f, float.Epsilon, float.MaxValue], f.GetFloat32Array("t.arr.f32")!);
        Assert.Equal([float.PositiveInfinity, -0f], f.GetFloat32Array("t.arr.f64")!);
        Assert.Empty(f.GetInt32Array("t.arr.empty")!);

        Assert.Null(f.GetString("absent"));
        Assert.Null(f.GetInt("absent"));
        Assert.Null(f.GetFloat("absent"));
        Assert.Null(f.GetBool("absent"));
        Assert.Null(f.GetStringArray("absent"));
        Assert.Null(f.GetInt32Array("absent"));
        Assert.Null(f.GetFloat32Array("absent"));

        AssertBadKey("t.u8", () => f.GetString("t.u8"));
        AssertBadKey("t.string", () => f.GetInt("t.string"));
        AssertBadKey("t.u64", () => f.GetInt("t.u64")); // above long.MaxValue
        AssertBadKey("t.bool.true", () => f.GetInt("t.bool.true"));
        AssertBadKey("t.string", () => f.GetFloat("t.string"));
        AssertBadKey("t.i32", () => f.GetBool("t.i32"));
        AssertBadKey("t.arr.i32", () => f.GetStringArray("t.arr.i32"));
        AssertBadKey("t.arr.u32", () => f.GetInt32Array("t.arr.u32")); // uint.MaxValue does not fit
        AssertBadKey("t.arr.string", () => f.GetFloat32Array("t.arr.string"));
        AssertBadKey("t.string", () => f.GetInt32Array("t.string"));
        AssertBadKey("absent", () => f.RequireString("absent"));
        AssertBadKey("absent", () => f.RequireInt("absent"));
        AssertBadKey("absent", () => f.RequireFloat("absent"));

        var ex = Assert.Throws<GgufFormatException>(() => f.GetTensor("nope"));
        Assert.Equal("tensor:nope", ex.Field);
        Assert.Contains("missing tensor nope", ex.Message);
        Assert.Null(f.FindTensor("nope"));
    }

    private static void AssertBadKey(string key, Action read)
    {
        var ex = Assert.Throws<GgufFormatException>(read);
        Assert.Equal(key, ex.Field);
        Assert.Contains(key, ex.Message);
    }

    [Fact]
    public void Writer_RejectsInvalidInput()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(3, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(3, 3));
        var w = new GgufWriter(3, 64);
        Assert.Throws<ArgumentException>(() => w.SetMetadata("", GgufValue.Of(1)));
        Assert.Throws<ArgumentException>(() => w.SetMetadata("k", new GgufValue(GgufValueType.UInt32, 5)));
        Assert.Throws<ArgumentException>(() => w.SetMetadata("k", new GgufValue(GgufValueType.Array, new int[1], GgufValueType.Float32)));
        Assert.Throws<ArgumentException>(() => w.SetMetadata("k", GgufValue.Of(new[] { GgufValue.Of(1) })));
        Assert.Throws<ArgumentException>(() => w.SetMetadata("general.alignment", GgufValue.Of(32u)));
        w.SetMetadata("general.alignment", GgufValue.Of(64u));
        w.AddTensor("t", GgmlType.F32, [2], new byte[8]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, [2], new byte[8]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [2], new byte[7]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.Q8_0, [31], new byte[34]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [0], new byte[0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => w.AddTensor("u", (GgmlType)99, [1], new byte[4]));
        using var f = GgufFile.OpenMemory(GgufTestData.ToBytes(w));
        Assert.Equal(64, f.Alignment);
        Assert.Equal(["general.alignment"], f.Metadata.Keys);
    }
}
