// llama.cpp's own quantizer (llama_model_quantize in the libllama LLamaSharp loaded), called with the parameter struct
// of this llama.cpp version: the layout is checked against llama_model_quantize_default_params before any call.
using System.Runtime.InteropServices;
using System.Text;
using LLama.Native;

namespace R1Sharp.Oracle.Tests;

internal static unsafe class LlamaQuantize
{
    /// <summary>llama_model_quantize_params (llama.h): 4 ints, 6 bools, 4 pointers; 56 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Params
    {
        public int NThread;
        public int FileType;
        public int OutputTensorType;
        public int TokenEmbeddingType;
        public byte AllowRequantize, QuantizeOutputTensor, OnlyCopy, Pure, KeepSplit, DryRun;
        public nint Imatrix, KvOverrides, TensorTypeOverrides, PruneLayers;
    }

    /// <summary>llama_model_imatrix_data: a name, its importances, their count; an array of them ends with a null name.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct ImatrixData
    {
        public byte* Name;
        public float* Data;
        public nuint Size;
    }

    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct Oversized;

    private static readonly Lazy<nint> s_lib = new(Load);

    private static nint Load()
    {
        NativeApi.llama_max_devices(); // makes LLamaSharp load its libllama
        string path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[^1].EndsWith("/libllama.so", StringComparison.Ordinal)).Select(f => f[^1]).FirstOrDefault()
            ?? throw new InvalidOperationException("libllama.so is not loaded");
        nint lib = NativeLibrary.Load(path);
        CheckLayout(lib);
        return lib;
    }

    /// <summary>The defaults as llama.h documents them, at the offsets of <see cref="Params"/>.</summary>
    private static void CheckLayout(nint lib)
    {
        var defaults = (delegate* unmanaged<Oversized>)NativeLibrary.GetExport(lib, "llama_model_quantize_default_params");
        Oversized o = defaults();
        // a struct over 16 bytes comes back through a buffer the caller passes: a larger one takes it whatever its size
        byte* b = (byte*)&o;
        var raw = new Span<byte>(b, 256);
        Params p = *(Params*)b;
        bool ok = sizeof(Params) == 56 && p.NThread == 0 && p.FileType == 7 /* Q8_0 */ && p.OutputTensorType == p.TokenEmbeddingType
            && p.OutputTensorType > 39 && p.AllowRequantize == 0 && p.QuantizeOutputTensor == 1 && p.OnlyCopy == 0 && p.Pure == 0
            && p.KeepSplit == 0 && p.DryRun == 0 && p.Imatrix == 0 && p.KvOverrides == 0 && p.TensorTypeOverrides == 0 && p.PruneLayers == 0;
        if (!ok) throw new InvalidOperationException($"llama_model_quantize_params layout differs from this test's: {Convert.ToHexString(raw[..64])}");
    }

    /// <summary>
    /// Quantizes <paramref name="input"/> to <paramref name="output"/> with llama.cpp's file type number; the importances
    /// are per tensor (llama-quantize's values: sums over counts). False when llama.cpp refuses.
    /// </summary>
    public static bool Quantize(string input, string output, int fileType, IReadOnlyDictionary<string, float[]>? imatrix = null, bool pure = false)
    {
        var quantize = (delegate* unmanaged<byte*, byte*, Params*, uint>)NativeLibrary.GetExport(s_lib.Value, "llama_model_quantize");
        var p = new Params
        {
            NThread = 2, FileType = fileType, OutputTensorType = 0, TokenEmbeddingType = 0, QuantizeOutputTensor = 1,
            Pure = (byte)(pure ? 1 : 0),
        };
        // GGML_TYPE_COUNT: "not set" for the two type overrides, the value the defaults carry
        var defaults = (delegate* unmanaged<Oversized>)NativeLibrary.GetExport(s_lib.Value, "llama_model_quantize_default_params");
        Oversized o = defaults();
        p.OutputTensorType = p.TokenEmbeddingType = ((Params*)&o)->OutputTensorType;

        var handles = new List<GCHandle>();
        var names = new List<nint>();
        try
        {
            ImatrixData[]? entries = null;
            if (imatrix is not null)
            {
                entries = new ImatrixData[imatrix.Count + 1];
                int i = 0;
                foreach (var (name, values) in imatrix)
                {
                    var bytes = Encoding.UTF8.GetBytes(name + "\0");
                    nint n = Marshal.AllocHGlobal(bytes.Length);
                    Marshal.Copy(bytes, 0, n, bytes.Length);
                    names.Add(n);
                    var h = GCHandle.Alloc(values, GCHandleType.Pinned);
                    handles.Add(h);
                    entries[i++] = new ImatrixData { Name = (byte*)n, Data = (float*)h.AddrOfPinnedObject(), Size = (nuint)values.Length };
                }
                var eh = GCHandle.Alloc(entries, GCHandleType.Pinned);
                handles.Add(eh);
                p.Imatrix = eh.AddrOfPinnedObject();
            }
            fixed (byte* pin = Encoding.UTF8.GetBytes(input + "\0"), pout = Encoding.UTF8.GetBytes(output + "\0"))
                return quantize(pin, pout, &p) == 0;
        }
        finally
        {
            foreach (var h in handles) h.Free();
            foreach (var n in names) Marshal.FreeHGlobal(n);
        }
    }
}
