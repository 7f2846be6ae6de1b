// Our split and merge against gguf-split's. The gguf-split program is not shipped with LLamaSharp, but the library it is
// built on is: these tests take gguf-split's steps (tools/gguf-split/gguf-split.cpp) on ggml's own gguf API
// (gguf_init_from_file, gguf_set_kv, gguf_set_val_*, gguf_add_tensor, gguf_get_meta_data) and llama's file naming
// (llama_split_path, llama_split_prefix), copy the tensor data as it does (each tensor padded to 32 bytes), and hold our
// parts and merged files to those bytes. Parts written that way then load in our engine with the single file's logits.
using System.Runtime.InteropServices;
using System.Text;
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Ggml.Tests;

public sealed unsafe class GgufSplitOracleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-ggufsplit-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Model(string kind)
    {
        string path = Path.Combine(_dir, kind + ".gguf");
        if (File.Exists(path)) return path;
        switch (kind)
        {
            case "qwen2-f32": Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 4, path); break;
            case "ds2-q8_0": Synthesizer.Write(Synthesizer.FindPreset("deepseek2", "tiny"), GgmlType.Q8_0, 4, path); break;
            default: Sample(path); break;
        }
        return path;
    }

    /// <summary>Every scalar and array metadata type, and tensors with trailing dimensions of 1 (which ggml drops).</summary>
    private static void Sample(string path)
    {
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("llama"));
        w.SetMetadata("t.u8", GgufValue.Of((byte)200));
        w.SetMetadata("t.i8", GgufValue.Of((sbyte)-100));
        w.SetMetadata("t.u16", GgufValue.Of((ushort)60000));
        w.SetMetadata("t.i16", GgufValue.Of((short)-30000));
        w.SetMetadata("t.u32", GgufValue.Of(4_000_000_000u));
        w.SetMetadata("t.i32", GgufValue.Of(-2_000_000_000));
        w.SetMetadata("t.f32", GgufValue.Of(3.5f));
        w.SetMetadata("t.bool", GgufValue.Of(true));
        w.SetMetadata("t.string", GgufValue.Of("héllo — 深度求索 🤖 <｜end▁of▁sentence｜>"));
        w.SetMetadata("t.u64", GgufValue.Of(ulong.MaxValue));
        w.SetMetadata("t.i64", GgufValue.Of(long.MinValue));
        w.SetMetadata("t.f64", GgufValue.Of(Math.PI));
        w.SetMetadata("t.arr.u8", GgufValue.Of(new byte[] { 0, 1, 255 }));
        w.SetMetadata("t.arr.i32", GgufValue.Of(new[] { int.MinValue, -1, 0, int.MaxValue }));
        w.SetMetadata("t.arr.f32", GgufValue.Of(new[] { 1.5f, -0.25f }));
        w.SetMetadata("t.arr.bool", GgufValue.Of(new[] { true, false, true }));
        w.SetMetadata("t.arr.string", GgufValue.Of(new[] { "a", "", "Ġthe", "🤖" }));
        w.SetMetadata("t.arr.f64", GgufValue.Of(new[] { 1e300, -1e-300 }));
        w.SetMetadata("t.arr.empty", GgufValue.Of(Array.Empty<int>()));
        (string, GgmlType, long[])[] tensors =
        [
            ("a", GgmlType.F32, [8, 3]), ("b", GgmlType.F16, [5, 2, 3]), ("c", GgmlType.Q8_0, [64, 3]), ("d", GgmlType.BF16, [7]),
            ("e", GgmlType.Q4_K, [256, 1, 2, 1]), ("f", GgmlType.F32, [12, 1]), ("g", GgmlType.Q6_K, [256, 2]), ("h", GgmlType.F32, [1]),
        ];
        var rng = new Random(5);
        foreach (var (name, type, shape) in tensors)
        {
            var bytes = new byte[new GgufTensorInfo(name, shape, type, 0).ByteSize];
            rng.NextBytes(bytes);
            w.AddTensor(name, type, shape, bytes);
        }
        w.Write(path);
    }

    public static TheoryData<string, string> Cases => new()
    {
        { "sample", "tensors 3" },
        { "sample", "tensors 3 no-first" },
        { "sample", "size 700" },
        { "sample", "size 400 no-first" },
        { "qwen2-f32", "tensors 10" },
        { "qwen2-f32", "size 200000" },
        { "ds2-q8_0", "tensors 20" },
        { "ds2-q8_0", "size 100000 no-first" },
    };

    private static GgufSplit.Options Parse(string how)
    {
        var w = how.Split(' ');
        return w[0] == "size"
            ? new() { MaxBytes = long.Parse(w[1]), NoTensorFirstSplit = w.Length > 2 }
            : new() { MaxTensors = int.Parse(w[1]), NoTensorFirstSplit = w.Length > 2 };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SplitIsGgufSplitsByteForByte_AndMergeIsGgufMergesByteForByte(string model, string how)
    {
        string input = Model(model);
        var options = Parse(how);
        string theirsDir = Directory.CreateDirectory(Path.Combine(_dir, $"{model}-{how}-ggml")).FullName;
        string oursDir = Directory.CreateDirectory(Path.Combine(_dir, $"{model}-{how}-ours")).FullName;
        var theirs = GgufSplitSteps.Split(input, Path.Combine(theirsDir, "m"), options);
        Assert.True(theirs.Count > 1, $"{how} gave {theirs.Count} part");
        IReadOnlyList<string> ours;
        using (var f = GgufFile.Open(input))
            ours = GgufSplit.Split(f, Path.Combine(oursDir, "m"), options);
        Assert.Equal(theirs.Select(Path.GetFileName), ours.Select(Path.GetFileName));
        for (int i = 0; i < ours.Count; i++)
            AssertBytesEqual(File.ReadAllBytes(theirs[i]), File.ReadAllBytes(ours[i]), Path.GetFileName(ours[i]));

        string theirMerge = Path.Combine(theirsDir, "merged.gguf"), ourMerge = Path.Combine(oursDir, "merged.gguf");
        GgufSplitSteps.Merge(theirs[0], theirMerge);
        using (var f = GgufFile.Open(ours[^1]))
            GgufSplit.MergeWriter(f).Write(ourMerge);
        AssertBytesEqual(File.ReadAllBytes(theirMerge), File.ReadAllBytes(ourMerge), "merged");

        // the parts gguf-split writes open as the model, from any part
        using var original = GgufFile.Open(input);
        foreach (string part in theirs)
        {
            using var split = GgufFile.Open(part);
            Assert.Equal(theirs, split.Paths);
            Assert.Equal(original.Tensors.Select(t => t.Name), split.Tensors.Select(t => t.Name));
            foreach (var t in original.Tensors)
                Assert.True(original.TensorBytes(t).SequenceEqual(split.TensorBytes(split.GetTensor(t.Name))), t.Name);
        }
    }

    [Theory]
    [InlineData("qwen2-f32")]
    [InlineData("ds2-q8_0")]
    public void PartsGgufSplitWrites_RunWithTheSingleFilesLogits(string model)
    {
        string input = Model(model);
        var parts = GgufSplitSteps.Split(input, Path.Combine(_dir, model + "-run"), new GgufSplit.Options { MaxTensors = 10 });
        Assert.True(parts.Count >= 3, $"{parts.Count} parts");
        var expected = Logits(input);
        Assert.Equal(expected, Logits(parts[0]));
        Assert.Equal(expected, Logits(parts[^1]));
    }

    private static float[] Logits(string path)
    {
        using var lm = LoadedModel.Load(path, threads: 2, mmap: true);
        using var session = new InferenceSession(lm.Model, 32);
        return session.Evaluate([1, 5, 9, 2, 7, 30], allLogits: true).ToArray();
    }

    [Theory]
    [InlineData("/models/x", 0, 3)]
    [InlineData("rel/DeepSeek-R1-UD-IQ1_S", 2, 3)]
    [InlineData("m", 11, 12)]
    [InlineData("m", 65534, 65535)]
    public void PartNamesAreLlamaCpps(string prefix, int index, int count)
    {
        var path = new byte[4096];
        int n;
        fixed (byte* p = path) fixed (byte* pre = Utf8(prefix))
            n = ((delegate* unmanaged<byte*, nuint, byte*, int, int, int>)Ggml.Llama("llama_split_path"))(p, 4096, pre, index, count);
        string theirs = Encoding.UTF8.GetString(path, 0, n);
        Assert.Equal(theirs, GgufFile.PartPath(prefix, index, count));
        Assert.Equal(prefix, GgufFile.SplitPrefix(theirs, index, count));
        Assert.Null(GgufFile.SplitPrefix(theirs, index, count + 1));
        Assert.Null(GgufFile.SplitPrefix(theirs, index + 1, count));
        var back = new byte[4096];
        fixed (byte* b = back) fixed (byte* sp = Utf8(theirs))
            n = ((delegate* unmanaged<byte*, nuint, byte*, int, int, int>)Ggml.Llama("llama_split_prefix"))(b, 4096, sp, index, count);
        Assert.Equal(prefix, Encoding.UTF8.GetString(back, 0, n));
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s + "\0");

    private static void AssertBytesEqual(byte[] expected, byte[] actual, string what)
    {
        int n = Math.Min(expected.Length, actual.Length);
        for (int i = 0; i < n; i++)
            Assert.True(expected[i] == actual[i], $"{what}: byte {i} differs: gguf-split {expected[i]:X2}, ours {actual[i]:X2}");
        Assert.True(expected.Length == actual.Length, $"{what}: gguf-split wrote {expected.Length} bytes, ours {actual.Length}");
    }

    /// <summary>gguf-split's --split and --merge, step by step, on ggml's gguf API.</summary>
    private static class GgufSplitSteps
    {
        [StructLayout(LayoutKind.Sequential)]
        private struct InitParams
        {
            public byte NoAlloc;
            public nint* Ctx;
        }

        private static readonly delegate* unmanaged<byte*, InitParams, nint> InitFromFile = (delegate* unmanaged<byte*, InitParams, nint>)Ggml.Base("gguf_init_from_file");
        private static readonly delegate* unmanaged<nint> InitEmpty = (delegate* unmanaged<nint>)Ggml.Base("gguf_init_empty");
        private static readonly delegate* unmanaged<nint, void> Free = (delegate* unmanaged<nint, void>)Ggml.Base("gguf_free");
        private static readonly delegate* unmanaged<nint, void> GgmlFree = (delegate* unmanaged<nint, void>)Ggml.Base("ggml_free");
        private static readonly delegate* unmanaged<nint, long> NTensors = (delegate* unmanaged<nint, long>)Ggml.Base("gguf_get_n_tensors");
        private static readonly delegate* unmanaged<nint, long, byte*> TensorName = (delegate* unmanaged<nint, long, byte*>)Ggml.Base("gguf_get_tensor_name");
        private static readonly delegate* unmanaged<nint, byte*, nint> GetTensor = (delegate* unmanaged<nint, byte*, nint>)Ggml.Base("ggml_get_tensor");
        private static readonly delegate* unmanaged<nint, nuint> NBytes = (delegate* unmanaged<nint, nuint>)Ggml.Base("ggml_nbytes");
        private static readonly delegate* unmanaged<nint, nint, void> AddTensor = (delegate* unmanaged<nint, nint, void>)Ggml.Base("gguf_add_tensor");
        private static readonly delegate* unmanaged<nint, nint, void> SetKv = (delegate* unmanaged<nint, nint, void>)Ggml.Base("gguf_set_kv");
        private static readonly delegate* unmanaged<nint, byte*, ushort, void> SetU16 = (delegate* unmanaged<nint, byte*, ushort, void>)Ggml.Base("gguf_set_val_u16");
        private static readonly delegate* unmanaged<nint, byte*, int, void> SetI32 = (delegate* unmanaged<nint, byte*, int, void>)Ggml.Base("gguf_set_val_i32");
        private static readonly delegate* unmanaged<nint, byte*, long> FindKey = (delegate* unmanaged<nint, byte*, long>)Ggml.Base("gguf_find_key");
        private static readonly delegate* unmanaged<nint, long, ushort> GetU16 = (delegate* unmanaged<nint, long, ushort>)Ggml.Base("gguf_get_val_u16");
        private static readonly delegate* unmanaged<nint, nuint> MetaSize = (delegate* unmanaged<nint, nuint>)Ggml.Base("gguf_get_meta_size");
        private static readonly delegate* unmanaged<nint, byte*, void> MetaData = (delegate* unmanaged<nint, byte*, void>)Ggml.Base("gguf_get_meta_data");
        private static readonly delegate* unmanaged<nint, nuint> DataOffset = (delegate* unmanaged<nint, nuint>)Ggml.Base("gguf_get_data_offset");
        private static readonly delegate* unmanaged<nint, long, nuint> TensorOffset = (delegate* unmanaged<nint, long, nuint>)Ggml.Base("gguf_get_tensor_offset");
        private static readonly delegate* unmanaged<nint, byte*, long> FindTensor = (delegate* unmanaged<nint, byte*, long>)Ggml.Base("gguf_find_tensor");
        private static readonly delegate* unmanaged<byte*, nuint, byte*, int, int, int> SplitPath = (delegate* unmanaged<byte*, nuint, byte*, int, int, int>)Ggml.Llama("llama_split_path");
        private static readonly delegate* unmanaged<byte*, nuint, byte*, int, int, int> SplitPrefix = (delegate* unmanaged<byte*, nuint, byte*, int, int, int>)Ggml.Llama("llama_split_prefix");

        private const int Pad = 32; // GGUF_DEFAULT_ALIGNMENT

        private static (nint Gguf, nint Meta) Open(string path)
        {
            nint meta = 0;
            nint ctx;
            fixed (byte* p = Utf8(path)) ctx = InitFromFile(p, new InitParams { NoAlloc = 1, Ctx = &meta });
            if (ctx == 0) throw new InvalidOperationException($"gguf_init_from_file failed on {path}");
            return (ctx, meta);
        }

        private static void SetU16Key(nint ctx, string key, ushort v)
        {
            fixed (byte* k = Utf8(key)) SetU16(ctx, k, v);
        }

        private static string PartPath(string prefix, int i, int n)
        {
            var buf = new byte[4096];
            int len;
            fixed (byte* b = buf) fixed (byte* pre = Utf8(prefix)) len = SplitPath(b, 4096, pre, i, n);
            return Encoding.UTF8.GetString(buf, 0, len);
        }

        private static byte[] Meta(nint ctx)
        {
            var data = new byte[(int)MetaSize(ctx)];
            fixed (byte* d = data) MetaData(ctx, d);
            return data;
        }

        /// <summary>Reads a tensor's bytes from <paramref name="input"/> and writes them padded to 32 bytes.</summary>
        private static void CopyTensor(FileStream input, long offset, long n, Stream output)
        {
            var buf = new byte[n];
            input.Seek(offset, SeekOrigin.Begin);
            input.ReadExactly(buf);
            output.Write(buf);
            output.Write(new byte[(n + Pad - 1) / Pad * Pad - n]);
        }

        /// <summary>gguf_split: the parts it plans, in the same order of calls, written as it writes them.</summary>
        public static IReadOnlyList<string> Split(string input, string prefix, GgufSplit.Options o)
        {
            var (ctxGguf, ctxMeta) = Open(input);
            int nTensors = (int)NTensors(ctxGguf);
            var outs = new List<nint>();
            nint ctxOut = 0;
            int iSplit = -1;
            void NewOut(bool allowNoTensors)
            {
                iSplit++;
                if (ctxOut != 0)
                {
                    if (NTensors(ctxOut) == 0 && !allowNoTensors) throw new InvalidOperationException("a split with 0 tensors");
                    outs.Add(ctxOut);
                }
                ctxOut = InitEmpty();
                if (iSplit == 0) SetKv(ctxOut, ctxGguf);
                SetU16Key(ctxOut, GgufFile.SplitNoKey, (ushort)iSplit);
                SetU16Key(ctxOut, GgufFile.SplitCountKey, 0);
                fixed (byte* k = Utf8(GgufFile.SplitTensorsKey)) SetI32(ctxOut, k, nTensors);
            }
            NewOut(false);
            if (o.NoTensorFirstSplit) NewOut(true);
            long curr = 0;
            for (int i = 0; i < nTensors; i++)
            {
                nint t = GetTensor(ctxMeta, TensorName(ctxGguf, i));
                long n = ((long)NBytes(t) + Pad - 1) / Pad * Pad;
                long next = curr + n;
                bool split = o.MaxBytes is long max ? next > max : i > 0 && i < nTensors && i % o.MaxTensors == 0;
                if (split)
                {
                    NewOut(false);
                    curr = n;
                }
                else
                {
                    curr = next;
                }
                AddTensor(ctxOut, t);
            }
            outs.Add(ctxOut);
            foreach (nint c in outs) SetU16Key(c, GgufFile.SplitCountKey, (ushort)outs.Count);

            var paths = new List<string>();
            using (var f = File.OpenRead(input))
            {
                for (int s = 0; s < outs.Count; s++)
                {
                    string path = PartPath(prefix, s, outs.Count);
                    using var fout = File.Create(path);
                    fout.Write(Meta(outs[s]));
                    for (long i = 0; i < NTensors(outs[s]); i++)
                    {
                        byte* name = TensorName(outs[s], i);
                        long n = (long)NBytes(GetTensor(ctxMeta, name));
                        long offset = (long)DataOffset(ctxGguf) + (long)TensorOffset(ctxGguf, FindTensor(ctxGguf, name));
                        CopyTensor(f, offset, n, fout);
                    }
                    paths.Add(path);
                }
            }
            foreach (nint c in outs) Free(c);
            Free(ctxGguf);
            GgmlFree(ctxMeta);
            return paths;
        }

        /// <summary>gguf_merge: the first part's metadata with split.count set to 0, then every part's tensors.</summary>
        public static void Merge(string firstPart, string output)
        {
            nint ctxOut = InitEmpty();
            var ctxs = new List<(nint Gguf, nint Meta, string Path)>();
            int nSplit = 1;
            string prefix = "";
            for (int i = 0; i < nSplit; i++)
            {
                string path = i == 0 ? firstPart : PartPath(prefix, i, nSplit);
                var (ctxGguf, ctxMeta) = Open(path);
                ctxs.Add((ctxGguf, ctxMeta, path));
                if (i == 0)
                {
                    long key;
                    fixed (byte* k = Utf8(GgufFile.SplitCountKey)) key = FindKey(ctxGguf, k);
                    if (key < 0) throw new InvalidOperationException("no split.count");
                    nSplit = GetU16(ctxGguf, key);
                    var buf = new byte[4096];
                    int len;
                    fixed (byte* b = buf) fixed (byte* sp = Utf8(path)) len = SplitPrefix(b, 4096, sp, 0, nSplit);
                    if (len == 0) throw new InvalidOperationException($"unexpected file name {path}");
                    prefix = Encoding.UTF8.GetString(buf, 0, len);
                    SetU16Key(ctxGguf, GgufFile.SplitCountKey, 0);
                    SetKv(ctxOut, ctxGguf);
                }
                for (long t = 0; t < NTensors(ctxGguf); t++) AddTensor(ctxOut, GetTensor(ctxMeta, TensorName(ctxGguf, t)));
            }
            using (var fout = File.Create(output))
            {
                fout.Write(Meta(ctxOut));
                foreach (var (ctxGguf, ctxMeta, path) in ctxs)
                {
                    using var f = File.OpenRead(path);
                    for (long t = 0; t < NTensors(ctxGguf); t++)
                    {
                        long n = (long)NBytes(GetTensor(ctxMeta, TensorName(ctxGguf, t)));
                        CopyTensor(f, (long)DataOffset(ctxGguf) + (long)TensorOffset(ctxGguf, t), n, fout);
                    }
                }
            }
            foreach (var (g, m, _) in ctxs)
            {
                Free(g);
                GgmlFree(m);
            }
            Free(ctxOut);
        }
    }
}
