// The ggml (and llama) libraries shipped with LLamaSharp.Backend.Cpu, loaded by path from its noavx build (scalar C
// without FMA contraction): the C functions the oracle tests call.
using System.Runtime.InteropServices;
using R1Sharp.Tensors;

namespace R1Sharp.Ggml.Tests;

internal static unsafe class Ggml
{
    private static readonly Lazy<(nint Base, nint Cpu)> s_libs = new(Load);
    private static readonly Lazy<nint> s_llama = new(LoadLlama);

    public static nint Base(string symbol) => NativeLibrary.GetExport(s_libs.Value.Base, symbol);
    public static nint Cpu(string symbol) => NativeLibrary.GetExport(s_libs.Value.Cpu, symbol);
    public static nint Llama(string symbol) => NativeLibrary.GetExport(s_llama.Value, symbol);

    public static string Name(GgmlType t) => t.ToString().ToLowerInvariant().Replace("_k", "_K");

    private static string Dir => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "noavx");

    private static (nint, nint) Load()
    {
        if (!File.Exists(Path.Combine(Dir, "libggml-base.so")))
            throw new InvalidOperationException($"ggml native libraries not found under {Dir}");
        nint b = NativeLibrary.Load(Path.Combine(Dir, "libggml-base.so"));
        nint c = NativeLibrary.Load(Path.Combine(Dir, "libggml-cpu.so"));
        // fills the f16 → f32 table that the noavx build's GGML_CPU_FP16_TO_FP32 reads
        ((delegate* unmanaged<void>)NativeLibrary.GetExport(c, "ggml_cpu_init"))();
        return (b, c);
    }

    /// <summary>libllama, after the ggml libraries it needs (found by their sonames, already loaded).</summary>
    private static nint LoadLlama()
    {
        _ = s_libs.Value;
        NativeLibrary.Load(Path.Combine(Dir, "libggml.so"));
        return NativeLibrary.Load(Path.Combine(Dir, "libllama.so"));
    }
}
