// llama.cpp's matrix inputs, as llama-imatrix gathers them: a graph-evaluation callback (llama_context_params.cb_eval)
// that asks for every MUL_MAT and MUL_MAT_ID node and, once computed, reads its activations (src[1]) and, for
// MUL_MAT_ID, the chosen experts (src[2]). The statistics follow llama-imatrix's collect_imatrix: blk.* weights; dense
// products of at least 16 rows, one count per tensor (rows / matrices); expert products counted per expert. Sums are
// kept in double here so that the comparison measures our engine, not float summation. ggml_tensor's fields are read at
// the offsets of ggml.h (type, buffer, ne[4], nb[4], op, op_params[16], flags, src[10], view_src, view_offs, data,
// name[64]), checked on every node against the weight's known shape.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LLama;
using LLama.Extensions;
using LLama.Native;

namespace R1Sharp.Oracle.Tests;

internal static unsafe class LlamaImatrix
{
    public sealed class Entry(int cols, int matrices, bool expert)
    {
        public readonly double[] Sum2 = new double[cols * matrices];
        public readonly long[] Counts = new long[expert ? matrices : 1];
        public readonly int Cols = cols;
    }

    private const int NeOffset = 16, NbOffset = 48, OpOffset = 80, SrcOffset = 152, DataOffset = 248, NameOffset = 256;

    private sealed class State
    {
        public readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);
        public Exception? Error;
    }

    private static readonly Lazy<(int MulMat, int MulMatId)> s_ops = new(() =>
    {
        NativeApi.llama_max_devices();
        string path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[^1].EndsWith("/libggml-base.so", StringComparison.Ordinal)).Select(f => f[^1]).FirstOrDefault()
            ?? throw new InvalidOperationException("libggml-base.so is not loaded");
        var opName = (delegate* unmanaged<int, byte*>)NativeLibrary.GetExport(NativeLibrary.Load(path), "ggml_op_name");
        int mm = -1, mmid = -1;
        for (int op = 0; op < 200 && (mm < 0 || mmid < 0); op++)
        {
            string? name = Marshal.PtrToStringUTF8((nint)opName(op));
            if (name == "MUL_MAT") mm = op;
            else if (name == "MUL_MAT_ID") mmid = op;
        }
        if (mm < 0 || mmid < 0) throw new InvalidOperationException("ggml has no MUL_MAT / MUL_MAT_ID op");
        return (mm, mmid);
    });

    /// <summary>llama-imatrix's statistics of <paramref name="path"/> over the chunks (each evaluated from an empty cache, every logit asked for).</summary>
    public static Dictionary<string, Entry> Collect(string path, IEnumerable<int[]> chunks, int ctx)
    {
        _ = s_ops.Value;
        var state = new State();
        var handle = GCHandle.Alloc(state);
        try
        {
            var p = LlamaCpp.Params(path, ctx);
            using var weights = LLamaWeights.LoadFromFile(p);
            p.ToLlamaContextParams(out var cp);
            cp.cb_eval = (nint)(delegate* unmanaged[Cdecl]<nint, byte, nint, byte>)&Callback;
            cp.cb_eval_user_data = GCHandle.ToIntPtr(handle);
            foreach (var chunk in chunks)
            {
                using var context = SafeLLamaContextHandle.Create(weights.NativeHandle, cp);
                var batch = new LLamaBatch();
                for (int i = 0; i < chunk.Length; i++) batch.Add((LLamaToken)chunk[i], i, LLamaSeqId.Zero, true);
                var r = context.Decode(batch);
                if (state.Error != null) throw new InvalidOperationException("reading llama.cpp's graph failed", state.Error);
                if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {r}");
            }
        }
        finally
        {
            handle.Free();
        }
        return state.Entries;
    }

    private static long* Ne(nint t) => (long*)(t + NeOffset);
    private static ulong* Nb(nint t) => (ulong*)(t + NbOffset);
    private static nint Src(nint t, int i) => *(nint*)(t + SrcOffset + 8 * i);
    private static string Name(nint t) => Marshal.PtrToStringUTF8(t + NameOffset) ?? "";

    /// <summary>ggml names a weight "blk.0.attn_q.weight" or, on a backend copy, "CPU#blk.0.attn_q.weight#0".</summary>
    private static string WeightName(nint t)
    {
        string n = Name(t);
        int a = n.IndexOf('#');
        if (a < 0) return n;
        int b = n.IndexOf('#', a + 1);
        return b < 0 ? n[(a + 1)..] : n[(a + 1)..b];
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte Callback(nint t, byte ask, nint user)
    {
        var state = (State)GCHandle.FromIntPtr(user).Target!;
        try
        {
            var (mm, mmid) = s_ops.Value;
            int op = *(int*)(t + OpOffset);
            if (op != mm && op != mmid) return 0;
            nint w = Src(t, 0), x = Src(t, 1);
            string name = WeightName(w);
            if (!name.StartsWith("blk.", StringComparison.Ordinal)) return 0;
            if (*(int*)x != 0 /* F32 */) return 0;
            if (op == mm && Ne(x)[1] < 16) return 0;
            if (ask != 0) return 1;
            long cols = Ne(x)[0];
            if (cols != Ne(w)[0]) throw new InvalidDataException($"{name}: input of {cols} columns for a weight of {Ne(w)[0]}");
            byte* data = *(byte**)(x + DataOffset);
            ulong* nb = Nb(x);
            if (op == mmid)
            {
                nint ids = Src(t, 2);
                long experts = Ne(w)[2], used = Ne(ids)[0], tokens = Ne(ids)[1];
                byte* idData = *(byte**)(ids + DataOffset);
                ulong* idNb = Nb(ids);
                if (!state.Entries.TryGetValue(name, out var e)) state.Entries[name] = e = new Entry((int)cols, (int)experts, expert: true);
                for (long tok = 0; tok < tokens; tok++)
                    for (long k = 0; k < used; k++)
                    {
                        int ex = *(int*)(idData + (ulong)tok * idNb[1] + (ulong)k * idNb[0]);
                        if ((uint)ex >= experts) throw new InvalidDataException($"{name}: expert {ex} of {experts}");
                        float* row = (float*)(data + (ulong)(k % Ne(x)[1]) * nb[1] + (ulong)tok * nb[2]);
                        Accumulate(e, ex, row);
                        e.Counts[ex]++;
                    }
            }
            else
            {
                long matrices = Ne(w)[2] * Ne(w)[3];
                if (!state.Entries.TryGetValue(name, out var e)) state.Entries[name] = e = new Entry((int)cols, (int)matrices, expert: false);
                long rows = 0;
                for (long i3 = 0; i3 < Ne(x)[3]; i3++)
                    for (long i2 = 0; i2 < Ne(x)[2]; i2++)
                    {
                        int m = (int)((i3 % Ne(w)[3]) * Ne(w)[2] + i2 % Ne(w)[2]);
                        for (long r = 0; r < Ne(x)[1]; r++, rows++)
                            Accumulate(e, m, (float*)(data + (ulong)r * nb[1] + (ulong)i2 * nb[2] + (ulong)i3 * nb[3]));
                    }
                e.Counts[0] += rows / matrices;
            }
            return 1;
        }
        catch (Exception ex)
        {
            state.Error ??= ex;
            return 0;
        }
    }

    private static void Accumulate(Entry e, int matrix, float* row)
    {
        var s = e.Sum2.AsSpan(matrix * e.Cols, e.Cols);
        for (int j = 0; j < e.Cols; j++) s[j] += (double)row[j] * row[j];
    }
}
