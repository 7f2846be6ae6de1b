// Maps general.architecture to the code that runs it; adding an architecture is one line here.
using R1Sharp.Formats;
using R1Sharp.Kernels;

namespace R1Sharp.Models;

public static class ModelRegistry
{
    private static readonly Dictionary<string, Func<GgufFile, ComputePool, ComputePool?, ICausalLM>> s_architectures = new()
    {
        ["llama"] = (file, pool, repackPool) => new DecoderModel(file, pool, Llama.Definition, repackPool),
        ["qwen2"] = (file, pool, repackPool) => new DecoderModel(file, pool, Qwen2.Definition, repackPool),
        ["deepseek2"] = (file, pool, repackPool) => new DeepSeek2Model(file, pool, repackPool: repackPool),
    };

    public static IReadOnlyCollection<string> Architectures => s_architectures.Keys;

    /// <summary>
    /// Builds the model a GGUF file describes, to run on <paramref name="pool"/>; the file must stay open while the
    /// model is used. The weights are rewritten into their interleaved layouts on <paramref name="repackPool"/> where
    /// given (a pool that is not running another model's passes), else on <paramref name="pool"/>.
    /// </summary>
    public static ICausalLM Load(GgufFile file, ComputePool pool, ComputePool? repackPool = null)
    {
        string arch = file.RequireString("general.architecture");
        if (!s_architectures.TryGetValue(arch, out var create))
            throw new NotSupportedException($"architecture '{arch}' is not supported (supported: {string.Join(", ", Architectures)})");
        try { return create(file, pool, repackPool); }
        catch (OverflowException) // a size or count in the file past what the loader's arithmetic holds
        {
            throw new InvalidDataException("the model file holds a size or count out of range");
        }
    }
}
