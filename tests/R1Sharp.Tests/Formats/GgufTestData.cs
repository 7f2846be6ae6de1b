// Shared builders for the GGUF tests: a writer holding every metadata type and a few tensor types,
// deep equality for metadata values, and a temp-file helper.
using R1Sharp.Formats;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Formats;

internal static class GgufTestData
{
    public static readonly (string Key, GgufValue Value)[] AllMetadata =
    [
        ("general.architecture", GgufValue.Of("qwen2")),
        ("t.u8", GgufValue.Of((byte)200)),
        ("t.i8", GgufValue.Of((sbyte)-100)),
        ("t.u16", GgufValue.Of((ushort)60000)),
        ("t.i16", GgufValue.Of((short)-30000)),
        ("t.u32", GgufValue.Of(4_000_000_000u)),
        ("t.i32", GgufValue.Of(-2_000_000_000)),
        ("t.f32", GgufValue.Of(3.5f)),
        ("t.bool.true", GgufValue.Of(true)),
        ("t.bool.false", GgufValue.Of(false)),
        ("t.string", GgufValue.Of("hello")),
        ("t.string.unicode", GgufValue.Of("héllo wörld — 深度求索 🤖🧠 <｜end▁of▁sentence｜>")),
        ("t.string.empty", GgufValue.Of("")),
        ("t.u64", GgufValue.Of(ulong.MaxValue)),
        ("t.i64", GgufValue.Of(long.MinValue)),
        ("t.f64", GgufValue.Of(Math.PI)),
        ("t.arr.u8", GgufValue.Of(new byte[] { 0, 1, 255 })),
        ("t.arr.i8", GgufValue.Of(new sbyte[] { -128, 0, 127 })),
        ("t.arr.u16", GgufValue.Of(new ushort[] { 0, 65535 })),
        ("t.arr.i16", GgufValue.Of(new short[] { -32768, 32767 })),
        ("t.arr.u32", GgufValue.Of(new uint[] { 0, uint.MaxValue })),
        ("t.arr.i32", GgufValue.Of(new[] { int.MinValue, -1, 0, int.MaxValue })),
        ("t.arr.f32", GgufValue.Of(new[] { 1.5f, -0.25f, float.Epsilon, float.MaxValue })),
        ("t.arr.bool", GgufValue.Of(new[] { true, false, true })),
        ("t.arr.string", GgufValue.Of(new[] { "a", "", "Ġthe", "🤖", "<think>" })),
        ("t.arr.u64", GgufValue.Of(new ulong[] { 0, ulong.MaxValue })),
        ("t.arr.i64", GgufValue.Of(new long[] { long.MinValue, long.MaxValue })),
        ("t.arr.f64", GgufValue.Of(new[] { 1e300, -1e-300 })),
        ("t.arr.empty", GgufValue.Of(Array.Empty<int>())),
        ("t.arr.empty.string", GgufValue.Of(Array.Empty<string>())),
        ("t.arr.nested", GgufValue.Of(new[]
        {
            GgufValue.Of(new[] { 1, 2, 3 }),
            GgufValue.Of(new[] { "x", "yz" }),
            GgufValue.Of(new[] { GgufValue.Of(new[] { 1.0 }), GgufValue.Of(Array.Empty<byte>()) }),
        })),
        ("t.arr.nested.empty", GgufValue.Of(Array.Empty<GgufValue>())),
    ];

    /// <summary>Deterministic bytes for a tensor of the given size.</summary>
    public static byte[] Bytes(long size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static (string Name, GgmlType Type, long[] Shape)[] SampleTensors =>
    [
        ("token_embd.weight", GgmlType.F32, [8, 3]),
        ("blk.0.attn_q.weight", GgmlType.F16, [5, 2, 3]),
        ("blk.0.ffn_up.weight", GgmlType.Q8_0, [64, 3]),
        ("blk.0.ffn_down.weight", GgmlType.BF16, [7]),
        ("blk.0.q4k", GgmlType.Q4_K, [256, 1, 2, 1]),
    ];

    /// <summary>A writer with every metadata type and the sample tensors (data from <see cref="Bytes"/>, seed = index).</summary>
    public static GgufWriter FullWriter(uint version = 3, int alignment = 32)
    {
        var w = new GgufWriter(version, alignment);
        foreach (var (k, v) in AllMetadata) w.SetMetadata(k, v);
        var ts = SampleTensors;
        for (int i = 0; i < ts.Length; i++)
        {
            var (name, type, shape) = ts[i];
            w.AddTensor(name, type, shape, Bytes(new GgufTensorInfo(name, shape, type, 0).ByteSize, i));
        }
        return w;
    }

    /// <summary>A small valid file (a few KVs, three tensors) whose header and table the corruption suite mangles.</summary>
    public static byte[] SmallFile()
    {
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("llama"));
        w.SetMetadata("llama.block_count", GgufValue.Of(2u));
        w.SetMetadata("llama.rope.freq_base", GgufValue.Of(10000f));
        w.SetMetadata("t.flag", GgufValue.Of(true));
        w.SetMetadata("t.i64", GgufValue.Of(-5L));
        w.SetMetadata("tokenizer.ggml.tokens", GgufValue.Of(new[] { "<s>", "a", "é" }));
        w.SetMetadata("tokenizer.ggml.scores", GgufValue.Of(new[] { 0f, -1f, -2f }));
        w.SetMetadata("t.nested", GgufValue.Of(new[] { GgufValue.Of(new[] { 1, 2 }), GgufValue.Of(new[] { "q" }) }));
        w.AddTensor("a", GgmlType.F32, [4, 2], Bytes(32, 1));
        w.AddTensor("b", GgmlType.Q8_0, [32], Bytes(34, 2));
        w.AddTensor("c", GgmlType.F16, [3, 1, 1, 2], Bytes(12, 3));
        return ToBytes(w);
    }

    public static byte[] ToBytes(GgufWriter w)
    {
        var ms = new MemoryStream();
        w.Write(ms);
        return ms.ToArray();
    }

    public static bool ValueEquals(GgufValue a, GgufValue b)
    {
        if (a.Type != b.Type) return false;
        if (a.Type != GgufValueType.Array) return a.Value.Equals(b.Value);
        if (a.ElementType != b.ElementType) return false;
        var x = (Array)a.Value;
        var y = (Array)b.Value;
        if (x.GetType() != y.GetType() || x.Length != y.Length) return false;
        for (int i = 0; i < x.Length; i++)
        {
            object? xi = x.GetValue(i), yi = y.GetValue(i);
            bool eq = xi is GgufValue gx ? yi is GgufValue gy && ValueEquals(gx, gy) : Equals(xi, yi);
            if (!eq) return false;
        }
        return true;
    }

    public static string TempPath(string tag) =>
        Path.Combine(Path.GetTempPath(), $"r1sharp-gguf-{tag}-{Environment.ProcessId}-{Guid.NewGuid():N}.gguf");
}
