// Kernel-level comparison with ggml on one thread: the matrix-vector products of the 1.5B shape's FFN (gate, up: 8960
// rows of 1536; down: 1536 rows of 8960) for a weight type, ours (MatMul, one thread) against ggml's own vec_dot of
// that type from the ggml-cpu LLamaSharp loads for this CPU (its x86 SIMD kernel, one row at a time, as its matrix
// product calls it), on the same weights and activations, passes alternating. Decode (1 token) streams the weights;
// --tokens N > 1 times N tokens against the same rows, as a prefill does (ggml: N vec_dots per row). --ffn 512 keeps
// the weights in cache (the kernels' arithmetic alone). Reports each engine's best pass and the ratio of the bests (on
// a loaded machine the best pass is the one least disturbed) and the median of the passes' ratios. Times are the
// thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time: on a machine shared with other jobs the thread's waits for
// a core are left out (its caches are still shared, so the passes still vary).
//   dotnet run --project bench/R1Sharp.Bench -c Release -- kernels --types iq4_xs,iq3_s [--tokens 1] [--layers 4] [--ffn 8960] [-r 5]
using System.Diagnostics;
using System.Runtime.InteropServices;
using LLama.Native;
using R1Sharp.Kernels;
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

internal static unsafe class KernelVsGgml
{
    public static int Run(string[] args)
    {
        string[] types = ["iq4_xs"];
        int tokens = 1, layers = 4, reps = 5, ffn = 8960;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--types": types = args[i + 1].Split(','); break;
                case "--tokens": tokens = int.Parse(args[i + 1]); break;
                case "--layers": layers = int.Parse(args[i + 1]); break;
                case "-r": reps = int.Parse(args[i + 1]); break;
                case "--ffn": ffn = int.Parse(args[i + 1]); break;
                default:
                    Console.Error.WriteLine("usage: R1Sharp.Bench kernels --types T1,T2 [--tokens N] [--layers L] [--ffn F] [-r REPS]");
                    return 2;
            }
        }
        nint cpu = GgmlCpu();
        Console.WriteLine($"one thread, FFN 1536 -> {ffn} -> 1536, {layers} layers, {tokens} token(s), {reps} alternating passes");
        Console.WriteLine("| type | r1sharp GB/s | ggml GB/s | ratio of bests | median of pass ratios |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        using var pool = new ComputePool(1);
        foreach (string name in types)
        {
            if (!GgmlTypeInfo.TryParse(name, out var type) || !QuantFormats.IsSupported(type)) { Console.Error.WriteLine($"unknown type {name}"); return 2; }
            var f = QuantFormats.Get(type);
            string vdt = GgmlName(f.VecDotType);
            var vecDot = (delegate* unmanaged<int, float*, nuint, byte*, nuint, byte*, nuint, int, void>)
                NativeLibrary.GetExport(cpu, $"ggml_vec_dot_{GgmlName(type)}_{vdt}");
            var mats = new List<WeightMatrix>();
            for (int l = 0; l < layers; l++)
            {
                mats.Add(Matrix(f, ffn, 1536, 3 * l));
                mats.Add(Matrix(f, ffn, 1536, 3 * l + 1));
                mats.Add(Matrix(f, 1536, ffn, 3 * l + 2));
            }
            var rng = new Random(5);
            var x1536 = Enumerable.Range(0, tokens * 1536).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var x8960 = Enumerable.Range(0, tokens * ffn).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var y = new float[tokens * Math.Max(ffn, 1536)];
            byte[] Act(float[] x, int cols)
            {
                var a = QuantFormats.Get(f.VecDotType);
                long rowBytes = GgmlTypeInfo.RowBytes(f.VecDotType, cols);
                var q = new byte[rowBytes * tokens];
                for (int t = 0; t < tokens; t++) a.QuantizeReference(x.AsSpan(t * cols, cols), q.AsSpan((int)(t * rowBytes), (int)rowBytes));
                return q;
            }
            byte[] a1536 = Act(x1536, 1536), a8960 = Act(x8960, ffn);
            double Ours()
            {
                double t0 = ThreadSeconds();
                foreach (var w in mats) MatMul.Compute(pool, w, w.Cols == 1536 ? x1536 : x8960, tokens, y);
                return ThreadSeconds() - t0;
            }
            double Ggml()
            {
                double t0 = ThreadSeconds();
                float s = 0;
                fixed (byte* p1536 = a1536, p8960 = a8960)
                {
                    foreach (var w in mats)
                    {
                        byte* act = w.Cols == 1536 ? p1536 : p8960;
                        long actBytes = GgmlTypeInfo.RowBytes(f.VecDotType, w.Cols);
                        for (int r = 0; r < w.Rows; r++)
                            for (int t = 0; t < tokens; t++) vecDot(w.Cols, &s, 0, w.Row(r), 0, act + t * actBytes, 0, 1);
                    }
                }
                return ThreadSeconds() - t0 + s * 0;
            }
            // warm-up: enough calls (and time) for the tiered JIT to replace the first, unoptimized code of the matrix
            // product's per-call work (the activations' quantization among it), as a model's thousands of calls do
            // (call counting starts once no new method has been compiled for 100 ms, and counts 30 calls)
            for (int round = 0; round < 3; round++)
            {
                for (int i = 0; i < 60; i += mats.Count) Ours();
                Thread.Sleep(250);
            }
            Ggml();
            var ours = new List<double>();
            var theirs = new List<double>();
            for (int r = 0; r < reps; r++)
            {
                ours.Add(Ours());
                theirs.Add(Ggml());
            }
            double bytes = mats.Sum(m => (double)m.Bytes);
            var ratios = ours.Zip(theirs, (o, g) => g / o).Order().ToList();
            Console.WriteLine($"| {name} | {bytes / ours.Min() / 1e9:F1} | {bytes / theirs.Min() / 1e9:F1} | {theirs.Min() / ours.Min():F2}x | {ratios[ratios.Count / 2]:F2}x |");
        }
        return 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec t);

    /// <summary>CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID = 3 on Linux).</summary>
    private static double ThreadSeconds()
    {
        if (ClockGetTime(3, out var t) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return t.Seconds + t.Nanoseconds * 1e-9;
    }

    private static string GgmlName(GgmlType t) => t.ToString().ToLowerInvariant().Replace("_k", "_K");

    /// <summary>Rows quantized from random values (64 distinct ones, repeated: the quantizers are slow and the bytes read are what count).</summary>
    private static WeightMatrix Matrix(QuantFormat f, int rows, int cols, int seed)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(f.Type, cols);
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * rows), 64);
        var rng = new Random(seed);
        var x = new float[cols];
        float[]? importance = f.RequiresImportance ? Enumerable.Repeat(1f, cols).ToArray() : null;
        const int Distinct = 64;
        for (int r = 0; r < Distinct; r++)
        {
            for (int c = 0; c < cols; c++) x[c] = (float)(rng.NextDouble() * 2 - 1);
            f.Quantize(x, new Span<byte>(p + r * rowBytes, (int)rowBytes), importance);
        }
        for (int r = Distinct; r < rows; r++) Buffer.MemoryCopy(p + r % Distinct * rowBytes, p + r * rowBytes, rowBytes, rowBytes);
        return new WeightMatrix(f.Type, p, rows, cols);
    }

    /// <summary>The ggml-cpu library LLamaSharp picks for this CPU (loaded by LLamaSharp, found in this process's maps).</summary>
    private static nint GgmlCpu()
    {
        NativeApi.llama_max_devices();
        string path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[^1].EndsWith("/libggml-cpu.so", StringComparison.Ordinal)).Select(f => f[^1]).FirstOrDefault()
            ?? throw new InvalidOperationException("libggml-cpu.so is not loaded");
        nint lib = NativeLibrary.Load(path);
        ((delegate* unmanaged<void>)NativeLibrary.GetExport(lib, "ggml_cpu_init"))();
        return lib;
    }
}
