// Matrix-product benchmark of one weight type on the FFN of the R1-Distill-Qwen-1.5B shape (gate and up 8960 × 1536,
// down 1536 × 8960), with random blocks in 2 MiB-page memory: for each token count, the best of several passes over
// L layers' distinct matrices, as ms per layer, multiply-adds per second and weight bytes per second, and multiply-adds
// per second of the process's CPU time (the best pass by that measure: steadier than the wall clock on a shared machine). Small --ffn and
// --layers keep the weights in cache (the kernels' arithmetic alone); the defaults stream them from memory.
// --layout interleaved rewrites the matrices into their type's interleaved decode layout first, as a model load does;
// --layout on-read leaves them native and has the products interleave each group as they read it, as a model read
// from its file's mapping does while the file moves into memory.
//   dotnet run --project bench/R1Sharp.KernelBench -c Release -- --type q4_k [-t 2] [--tokens 1,4,8,16,64] [--ffn 8960] [--layers 6] [--layout native|interleaved|on-read]
using System.Diagnostics;
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

var o = Options.Parse(args);
if (o is null)
{
    Console.Error.WriteLine("usage: R1Sharp.KernelBench --type TYPE [-t THREADS] [--tokens 1,4,8,16,64] [--ffn 8960] [--layers 6] [--layout native|interleaved|on-read]");
    return 2;
}
const int Hidden = 1536;
var rng = new Random(1);
var gate = new WeightMatrix[o.Layers];
var up = new WeightMatrix[o.Layers];
var down = new WeightMatrix[o.Layers];
for (int l = 0; l < o.Layers; l++)
{
    gate[l] = Weights.Random(o.Type, o.Ffn, Hidden, rng);
    up[l] = Weights.Random(o.Type, o.Ffn, Hidden, rng);
    down[l] = Weights.Random(o.Type, Hidden, o.Ffn, rng);
    if (o.Layout != "native")
    {
        if (!gate[l].CanInterleave)
        {
            Console.Error.WriteLine($"{GgmlTypeInfo.Name(o.Type)} has no interleaved layout on this machine");
            return 2;
        }
        (gate[l], up[l], down[l]) = o.Layout == "on-read"
            ? (gate[l].InterleaveOnRead(), up[l].InterleaveOnRead(), down[l].InterleaveOnRead())
            : (gate[l].Interleave(), up[l].Interleave(), down[l].Interleave());
    }
}
using var pool = new ComputePool(o.Threads);
int width = Math.Max(o.Ffn, Hidden);
Console.WriteLine($"{GgmlTypeInfo.Name(o.Type)} {o.Layout}, FFN {Hidden} -> {o.Ffn} -> {Hidden}, {o.Layers} layers, {o.Threads} threads");
Console.WriteLine("| tokens | ms / layer | GMAC/s | weight GB/s | GMAC per CPU-second |");
Console.WriteLine("|---:|---:|---:|---:|---:|");
foreach (int n in o.Tokens)
{
    var x = new float[n * width];
    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
    var y0 = new float[n * width];
    var y1 = new float[n * width];
    var y2 = new float[n * width];
    void Pass()
    {
        for (int l = 0; l < o.Layers; l++)
        {
            MatMul.Compute(pool, gate[l], up[l], x.AsSpan(0, n * Hidden), n, y0, y1);
            MatMul.Compute(pool, down[l], x.AsSpan(0, n * o.Ffn), n, y2);
        }
    }
    Pass(); // JIT and first touch
    double best = double.MaxValue, bestCpu = double.MaxValue;
    int passes = Math.Max(3, (int)(64L * 8960 / ((long)n * o.Ffn)));
    for (int p = 0; p < passes; p++)
    {
        double cpu0 = Weights.CpuSeconds();
        var sw = Stopwatch.StartNew();
        Pass();
        best = Math.Min(best, sw.Elapsed.TotalSeconds);
        bestCpu = Math.Min(bestCpu, Weights.CpuSeconds() - cpu0);
    }
    double macs = 3.0 * Hidden * o.Ffn * o.Layers * n;
    double bytes = 3.0 * GgmlTypeInfo.RowBytes(o.Type, Hidden) * o.Ffn * o.Layers;
    Console.WriteLine($"| {n} | {best * 1e3 / o.Layers:F3} | {macs / best / 1e9:F1} | {bytes / best / 1e9:F1} | {macs / bestCpu / 1e9:F1} |");
}
return 0;

internal static unsafe class Weights
{
    /// <summary>A matrix of random blocks whose scales are normal numbers of a sensible size (2 MiB pages where the OS gives them).</summary>
    public static WeightMatrix Random(GgmlType type, int rows, int cols, Random rng)
    {
        long bytes = GgmlTypeInfo.RowBytes(type, cols) * rows;
        const long Page = 2 << 20;
        long size = (bytes + Page - 1) & ~(Page - 1);
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)size, (nuint)Page);
        if (OperatingSystem.IsLinux()) _ = Madvise(p, (nuint)size, 14); // MADV_HUGEPAGE
        rng.NextBytes(new Span<byte>(p, checked((int)bytes)));
        int blockBytes = GgmlTypeInfo.BlockBytes(type);
        if (type is GgmlType.F32 or GgmlType.BF16)
        {
            // plain values in [-1, 1) (random bits would include NaNs and subnormals)
            for (long i = 0; i < bytes; i += blockBytes)
            {
                float f = (float)(rng.NextDouble() * 2 - 1);
                if (type == GgmlType.F32) *(float*)(p + i) = f;
                else *(ushort*)(p + i) = (ushort)(BitConverter.SingleToUInt32Bits(f) >> 16);
            }
        }
        else
        {
            // the F16 scales of each block (d, and the min scale where there is one) near 2^-8, wherever the layout keeps them
            int[] scales = type switch
            {
                GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q4_1 or GgmlType.Q5_1 => [0, 2],
                GgmlType.Q2_K => [blockBytes - 4, blockBytes - 2],
                GgmlType.Q3_K or GgmlType.Q6_K => [blockBytes - 2],
                _ => [0],
            };
            for (long b = 0; b < bytes; b += blockBytes)
                foreach (int at in scales) *(ushort*)(p + b + at) = (ushort)(0x1C00 | (rng.Next() & 0x3FF));
        }
        return new WeightMatrix(type, p, rows, cols);
    }

    /// <summary>CPU time of the whole process (all threads), in seconds: what a pass costs when other work shares the cores.</summary>
    public static double CpuSeconds()
    {
        long* ts = stackalloc long[2];
        return OperatingSystem.IsLinux() && ClockGetTime(2, ts) == 0 ? ts[0] + ts[1] * 1e-9 : Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, long* ts); // CLOCK_PROCESS_CPUTIME_ID = 2

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int Madvise(void* addr, nuint length, int advice);
}

internal sealed record Options(GgmlType Type, int Threads, int[] Tokens, int Ffn, int Layers, string Layout)
{
    public static Options? Parse(string[] a)
    {
        GgmlType? type = null;
        int threads = Environment.ProcessorCount, ffn = 8960, layers = 6;
        string layout = "native";
        int[]? tokens = [1, 4, 8, 16, 64];
        if (a.Length % 2 != 0) return null;
        for (int i = 0; i + 1 < a.Length; i += 2)
        {
            string v = a[i + 1];
            bool ok = a[i] switch
            {
                "--type" => GgmlTypeInfo.TryParse(v, out var t) && (type = t) is not null,
                "-t" or "--threads" => int.TryParse(v, out threads),
                "--tokens" => (tokens = Counts(v)) is not null,
                "--ffn" => int.TryParse(v, out ffn),
                "--layers" => int.TryParse(v, out layers),
                "--layout" => (layout = v) is "native" or "interleaved" or "on-read",
                _ => false,
            };
            if (!ok) return null;
        }
        return type is { } ty && threads > 0 && ffn > 0 && ffn % 256 == 0 && layers > 0 && tokens is { Length: > 0 } && tokens.All(n => n > 0)
            ? new Options(ty, threads, tokens, ffn, layers, layout) : null;
    }

    private static int[]? Counts(string list)
    {
        var parts = list.Split(',');
        var counts = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++) if (!int.TryParse(parts[i], out counts[i])) return null;
        return counts;
    }
}
