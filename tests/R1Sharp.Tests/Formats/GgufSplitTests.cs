// Split models: parts written as gguf-split writes them open as the whole model from any part, merge back into one
// file, and a missing or foreign part is a one-line error naming the file. (Byte-for-byte agreement with gguf-split's
// own procedure is in R1Sharp.Ggml.Tests; llama.cpp loading the parts in R1Sharp.Oracle.Tests.)
using R1Sharp.Formats;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Formats;

public sealed class GgufSplitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-split-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>The full sample file (every metadata type, tensors with trailing dimensions of 1) on disk.</summary>
    private string WriteFull(string name = "full.gguf", int alignment = 32)
    {
        string path = Path.Combine(_dir, name);
        GgufTestData.FullWriter(alignment: alignment).Write(path);
        return path;
    }

    /// <summary>A file of <paramref name="n"/> F32 tensors of the given float counts.</summary>
    private string WriteTensors(string name, params int[] floats)
    {
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("llama"));
        for (int i = 0; i < floats.Length; i++) w.AddTensor($"t{i}", GgmlType.F32, [floats[i]], GgufTestData.Bytes(floats[i] * 4L, i));
        string path = Path.Combine(_dir, name);
        w.Write(path);
        return path;
    }

    private static void AssertSameModel(GgufFile expected, GgufFile actual)
    {
        foreach (var (key, value) in expected.Metadata)
        {
            if (GgufSplit.IsSplitKey(key)) continue;
            Assert.True(actual.Metadata.TryGetValue(key, out var got), $"{key} missing");
            Assert.True(GgufTestData.ValueEquals(value, got), $"{key}: {value} != {got}");
        }
        Assert.Equal(expected.Metadata.Keys.Count(k => !GgufSplit.IsSplitKey(k)), actual.Metadata.Keys.Count(k => !GgufSplit.IsSplitKey(k)));
        Assert.Equal(expected.Tensors.Select(t => t.Name), actual.Tensors.Select(t => t.Name));
        foreach (var t in expected.Tensors)
        {
            var u = actual.GetTensor(t.Name);
            Assert.Equal(t.Type, u.Type);
            Assert.Equal(GgufTensorInfo.GgmlDims(t.Shape), GgufTensorInfo.GgmlDims(u.Shape));
            Assert.True(expected.TensorBytes(t).SequenceEqual(actual.TensorBytes(u)), t.Name);
        }
    }

    [Fact]
    public void ByTensors_EveryPartOpensTheWholeModel()
    {
        string input = WriteFull();
        using var original = GgufFile.Open(input);
        var paths = GgufSplit.Split(original, Path.Combine(_dir, "m"), new GgufSplit.Options { MaxTensors = 2 });
        Assert.Equal([.. new[] { 1, 2, 3 }.Select(i => Path.Combine(_dir, $"m-0000{i}-of-00003.gguf"))], paths);
        foreach (string part in paths)
        {
            using var f = GgufFile.Open(part);
            Assert.Equal(paths, f.Paths);
            Assert.Equal(paths[0], f.Path);
            Assert.Equal("m", f.Name);
            Assert.Equal(paths.Sum(p => new FileInfo(p).Length), f.FileSize);
            Assert.Equal([0, 0, 1, 1, 2], f.Tensors.Select(t => t.Part));
            Assert.Equal(paths[2], f.PathOf(f.Tensors[4]));
            AssertSameModel(original, f);
            // the split keys are the first part's, last, in gguf-split's order
            Assert.Equal([GgufFile.SplitNoKey, GgufFile.SplitTensorsKey, GgufFile.SplitCountKey], f.Metadata.Keys.TakeLast(3));
            Assert.Equal(0, f.GetInt(GgufFile.SplitNoKey));
            Assert.Equal(3, f.GetInt(GgufFile.SplitCountKey));
            Assert.Equal(5, f.GetInt(GgufFile.SplitTensorsKey));
        }
        // parts after the first hold the split keys alone
        using (var second = GgufFile.OpenMemory(File.ReadAllBytes(paths[1])))
            Assert.Equal([GgufFile.SplitNoKey, GgufFile.SplitTensorsKey, GgufFile.SplitCountKey], second.Metadata.Keys);
    }

    [Fact]
    public void Plan_BySize_CountsEachTensorPaddedTo32AndNoMetadata()
    {
        // 40, 24, 8 and 100 floats: 160, 96, 32 and 400 bytes, each already a multiple of 32
        using var f = GgufFile.Open(WriteTensors("sizes.gguf", 40, 24, 8, 100));
        int[] Counts(GgufSplit.Options o) => GgufSplit.Plan(f, o).Select(p => p.Count).ToArray();
        Assert.Equal([3, 1], Counts(new() { MaxBytes = 288 })); // 160+96+32 = 288 fits exactly
        Assert.Equal([2, 1, 1], Counts(new() { MaxBytes = 287 }));
        Assert.Equal([4], Counts(new() { MaxBytes = 10_000 }));
        Assert.Equal([0, 3, 1], Counts(new() { MaxBytes = 288, NoTensorFirstSplit = true }));
        Assert.Equal([2, 2], Counts(new() { MaxTensors = 2 }));
        Assert.Equal([3, 1], Counts(new() { MaxTensors = 3 }));
        Assert.Equal([0, 3, 1], Counts(new() { MaxTensors = 3, NoTensorFirstSplit = true }));
        Assert.Equal([4], Counts(new() { MaxTensors = 128 }));
        // a tensor larger than the limit takes a part of its own, as in gguf-split, unless the part before it is empty
        Assert.Equal([1, 2, 1], Counts(new() { MaxBytes = 200 }));
        var e = Assert.Throws<ArgumentException>(() => GgufSplit.Plan(f, new() { MaxBytes = 100 }));
        Assert.Contains("t0", e.Message);
        Assert.Throws<ArgumentException>(() => GgufSplit.Plan(f, new() { MaxBytes = 100, NoTensorFirstSplit = true }));
        // a tensor of 7 floats (28 bytes) counts as 32
        using var odd = GgufFile.Open(WriteTensors("odd.gguf", 7, 7, 7));
        Assert.Equal([2, 1], GgufSplit.Plan(odd, new() { MaxBytes = 64 }).Select(p => p.Count));
    }

    [Fact]
    public void NoTensorFirstSplit_FirstPartHoldsTheMetadataAlone()
    {
        using var original = GgufFile.Open(WriteFull());
        var paths = GgufSplit.Split(original, Path.Combine(_dir, "n"), new GgufSplit.Options { MaxTensors = 3, NoTensorFirstSplit = true });
        Assert.Equal(3, paths.Count);
        using var f = GgufFile.Open(paths[2]);
        Assert.DoesNotContain(f.Tensors, t => t.Part == 0);
        AssertSameModel(original, f);
    }

    [Fact]
    public void Merge_GivesTheModelBackAsOneFile_AndMergingAgainIsByteIdentical()
    {
        using var original = GgufFile.Open(WriteFull());
        var paths = GgufSplit.Split(original, Path.Combine(_dir, "a"), new GgufSplit.Options { MaxTensors = 2 });
        string merged = Path.Combine(_dir, "merged.gguf");
        using (var split = GgufFile.Open(paths[1]))
            GgufSplit.MergeWriter(split).Write(merged);
        using (var m = GgufFile.Open(merged))
        {
            Assert.Single(m.Paths);
            Assert.Equal("merged", m.Name);
            AssertSameModel(original, m);
            // gguf-split --merge keeps split.no and split.tensors.count and sets split.count to 0 (a single file)
            Assert.Equal(0, m.GetInt(GgufFile.SplitCountKey));
            Assert.Equal(GgufValueType.UInt16, m.Metadata[GgufFile.SplitCountKey].Type);
            Assert.Equal(GgufFile.SplitCountKey, m.Metadata.Keys.Last());
            // a merged file splits and merges into the same bytes
            var again = GgufSplit.Split(m, Path.Combine(_dir, "b"), new GgufSplit.Options { MaxBytes = 300 });
            Assert.True(again.Count > 1);
            string merged2 = Path.Combine(_dir, "merged2.gguf");
            using (var split2 = GgufFile.Open(again[0]))
                GgufSplit.MergeWriter(split2).Write(merged2);
            Assert.Equal(File.ReadAllBytes(merged), File.ReadAllBytes(merged2));
        }
        using var single = GgufFile.Open(WriteFull("single.gguf"));
        Assert.Contains("not a split model", Assert.Throws<ArgumentException>(() => GgufSplit.MergeWriter(single)).Message);
    }

    [Fact]
    public void NonDefaultAlignment_EveryPartKeepsIt()
    {
        using var original = GgufFile.Open(WriteFull("aligned.gguf", alignment: 64));
        var paths = GgufSplit.Split(original, Path.Combine(_dir, "al"), new GgufSplit.Options { MaxTensors = 2 });
        foreach (string p in paths)
        {
            using var part = GgufFile.OpenMemory(File.ReadAllBytes(p));
            Assert.Equal(64, part.Alignment);
        }
        using var f = GgufFile.Open(paths[0]);
        AssertSameModel(original, f);
    }

    [Fact]
    public void CopyToMemory_CopiesEveryPart()
    {
        using var original = GgufFile.Open(WriteFull());
        var paths = GgufSplit.Split(original, Path.Combine(_dir, "c"), new GgufSplit.Options { MaxTensors = 2 });
        using var f = GgufFile.Open(paths[0]);
        using var copy = f.CopyToMemory(threads: 2);
        Assert.True(copy.InMemory);
        Assert.Equal(f.Paths, copy.Paths);
        Assert.Equal(f.FileSize, copy.FileSize);
        AssertSameModel(original, copy);
        f.Dispose();
        AssertSameModel(original, copy); // the copy outlives the mappings
    }

    // ---------------------------------------------------------------- parts that do not belong

    /// <summary>
    /// Writes parts by hand: part i holds the tensors named in <paramref name="tensors"/>[i], with the split keys
    /// given (null leaves a key out); the first part also holds general.architecture.
    /// </summary>
    private string[] WriteParts(string prefix, string[][] tensors, Func<int, (GgufValue? No, GgufValue? Count, GgufValue? Total)> keys, int? named = null)
    {
        int n = named ?? tensors.Length;
        var paths = new string[tensors.Length];
        for (int i = 0; i < tensors.Length; i++)
        {
            var w = new GgufWriter();
            if (i == 0) w.SetMetadata("general.architecture", GgufValue.Of("llama"));
            var (no, count, total) = keys(i);
            if (no is not null) w.SetMetadata(GgufFile.SplitNoKey, no);
            if (total is not null) w.SetMetadata(GgufFile.SplitTensorsKey, total);
            if (count is not null) w.SetMetadata(GgufFile.SplitCountKey, count);
            foreach (string t in tensors[i]) w.AddTensor(t, GgmlType.F32, [8], GgufTestData.Bytes(32, t.GetHashCode()));
            paths[i] = GgufFile.PartPath(Path.Combine(_dir, prefix), i, n);
            w.Write(paths[i]);
        }
        return paths;
    }

    private static (GgufValue?, GgufValue?, GgufValue?) Keys(int no, int count, int total) =>
        (GgufValue.Of((ushort)no), GgufValue.Of((ushort)count), GgufValue.Of(total));

    private static readonly string[][] s_three = [["a", "b"], ["c"], ["d", "e"]];

    /// <summary>Opening any part fails with one line that names <paramref name="file"/> and says <paramref name="what"/>.</summary>
    private static void AssertRejected(string[] open, string file, string what)
    {
        foreach (string p in open)
        {
            var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(p));
            Assert.DoesNotContain('\n', e.Message);
            Assert.Contains(Path.GetFileName(file), e.Message);
            Assert.Contains(what, e.Message);
        }
    }

    [Fact]
    public void WellFormedHandWrittenParts_Open()
    {
        var paths = WriteParts("ok", s_three, i => Keys(i, 3, 5));
        using var f = GgufFile.Open(paths[2]);
        Assert.Equal(["a", "b", "c", "d", "e"], f.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void MissingPart_NamesTheMissingFile()
    {
        var paths = WriteParts("miss", s_three, i => Keys(i, 3, 5));
        File.Delete(paths[1]);
        AssertRejected([paths[0], paths[2]], paths[1], "part 2 of 3");
    }

    [Fact]
    public void PartOfAnotherSplit_DifferentCount()
    {
        var paths = WriteParts("foreign", s_three, i => Keys(i, i == 2 ? 4 : 3, 5));
        AssertRejected([paths[0], paths[1]], paths[2], "split.count is 4");
    }

    [Fact]
    public void WrongSplitNo()
    {
        var paths = WriteParts("no", s_three, i => Keys(i == 1 ? 2 : i, 3, 5));
        AssertRejected([paths[0], paths[2]], paths[1], "split.no is 2");
    }

    [Fact]
    public void TensorsCountedWrong()
    {
        var other = WriteParts("count1", s_three, i => Keys(i, 3, i == 2 ? 6 : 5));
        AssertRejected(other, other[2], "split.tensors.count is 6");
        var all = WriteParts("count2", s_three, i => Keys(i, 3, 6));
        AssertRejected(all, all[0], "the 3 parts hold 5 tensors");
    }

    [Fact]
    public void DuplicateTensor()
    {
        var paths = WriteParts("dup", [["a", "b"], ["c", "a"], ["d"]], i => Keys(i, 3, 5));
        AssertRejected(paths, paths[1], "tensor a is also in");
    }

    [Fact]
    public void SplitKeysOfTheWrongTypeOrMissing()
    {
        var u32 = WriteParts("u32", s_three, i => (GgufValue.Of((ushort)i), i == 1 ? GgufValue.Of(3u) : GgufValue.Of((ushort)3), GgufValue.Of(5)));
        AssertRejected([u32[0], u32[2]], u32[1], "expected a UInt16");
        var missing = WriteParts("nokey", s_three, i => i == 2 ? (null, null, null) : Keys(i, 3, 5));
        AssertRejected([missing[0]], missing[2], "split.count is missing");
    }

    [Fact]
    public void PartNamedWrongly()
    {
        var paths = WriteParts("named", s_three, i => Keys(i, 3, 5));
        string renamed = Path.Combine(_dir, "renamed.gguf");
        File.Copy(paths[0], renamed);
        AssertRejected([renamed], renamed, "does not end with -00001-of-00003.gguf");
        // a part of 3 among files named as parts of 4
        var four = WriteParts("four", s_three, i => Keys(i, 3, 5), named: 4);
        AssertRejected([four[0]], four[0], "does not end with");
    }

    [Fact]
    public void CorruptPart_NamesIt()
    {
        var paths = WriteParts("corrupt", s_three, i => Keys(i, 3, 5));
        var bytes = File.ReadAllBytes(paths[2]);
        File.WriteAllBytes(paths[2], bytes[..(bytes.Length - 40)]);
        AssertRejected([paths[0]], paths[2], "runs past the end of the data section");
    }

    [Fact]
    public void SplitCountOfOne_IsASingleFile()
    {
        var paths = WriteParts("one", [["a", "b"]], i => Keys(0, 1, 2));
        using var f = GgufFile.Open(paths[0]);
        Assert.Single(f.Paths);
        Assert.Equal(2, f.Tensors.Count);
    }
}
