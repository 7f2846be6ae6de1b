// Maps general.architecture to the code that runs it; adding an architecture is one line here.
using R1Sharp.Formats;
using R1Sharp.Kernels;

namespace R1Sharp.Models;

public static class ModelRegistry
{
    private static readonly Dictionary<string, Func<GgufFile, ComputePool, ICausalLM>> s_architectures = new()
    {
        ["llama"] = (file, pool) => new DecoderModel(file, pool, Llama.Definition),
        ["qwen2"] = (file, pool) => new DecoderModel(file, pool, Qwen2.Definition),
        ["deepseek2"] = (file, pool) => new DeepSeek2Model(file, pool),
    };

    public static IReadOnlyCollection<string> Architectures => s_architectures.Keys;

    /// <summary>Builds the model a GGUF file describes; the file must stay open while the model is used.</summary>
    public static ICausalLM Load(GgufFile file, ComputePool pool)
    {
        string arch = file.RequireString("general.architecture");
        if (!s_architectures.TryGetValue(arch, out var create))
            throw new NotSupportedException($"architecture '{arch}' is not supported (supported: {string.Join(", ", Architectures)})");
        return create(file, pool);
    }
}
