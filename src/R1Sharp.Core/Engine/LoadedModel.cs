// A model file opened for use: the mapped GGUF, its tokenizer, the architecture's forward pass and the worker threads.
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tokenization;

namespace R1Sharp.Engine;

public sealed class LoadedModel : IDisposable
{
    private LoadedModel(GgufFile file, ComputePool pool, ICausalLM model, BpeTokenizer tokenizer)
    {
        File = file;
        Pool = pool;
        Model = model;
        Tokenizer = tokenizer;
        _endOfGeneration = [tokenizer.EosId];
        foreach (string name in s_endTokens)
            if (tokenizer.TokenToId(name) is int id) _endOfGeneration.Add(id);
    }

    // end-of-turn tokens of the R1 (DeepSeek), Qwen and Llama 3 formats
    private static readonly string[] s_endTokens = ["<｜end▁of▁sentence｜>", "<|EOT|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"];
    private readonly HashSet<int> _endOfGeneration;

    public GgufFile File { get; }
    public ComputePool Pool { get; }
    public ICausalLM Model { get; }
    public BpeTokenizer Tokenizer { get; }
    public ModelConfig Config => Model.Config;

    /// <summary>
    /// Opens <paramref name="path"/>; <paramref name="threads"/> 0 uses every core. The weights are copied into memory
    /// with huge pages (<see cref="GgufFile.MoveToMemory"/>: faster decode) unless <paramref name="mmap"/> keeps them
    /// in the file mapping (no copy at load, pages shared with other processes). The copy's Q8_0, Q4_K and Q6_K matrices are
    /// interleaved for decode (<see cref="WeightMatrix.Interleave"/>) unless <paramref name="repack"/> is false.
    /// </summary>
    public static LoadedModel Load(string path, int threads = 0, bool mmap = false, bool repack = true)
    {
        var file = GgufFile.Open(path);
        file.RepackWeights = repack;
        ComputePool? pool = null;
        try
        {
            if (!mmap) file.MoveToMemory();
            var tokenizer = new BpeTokenizer(TokenizerData.FromGgufMetadata(file.Metadata));
            pool = new ComputePool(threads > 0 ? threads : Environment.ProcessorCount);
            var model = ModelRegistry.Load(file, pool);
            if (tokenizer.VocabSize > model.Config.VocabSize)
                throw new InvalidDataException($"the tokenizer has {tokenizer.VocabSize} tokens but token_embd.weight only {model.Config.VocabSize} rows");
            return new LoadedModel(file, pool, model, tokenizer);
        }
        catch
        {
            pool?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>Tokens after which generation stops: eos and the other end-of-turn control tokens.</summary>
    public bool IsEndOfGeneration(int id) => _endOfGeneration.Contains(id);

    public void Dispose()
    {
        Model.Dispose();
        Pool.Dispose();
        File.Dispose();
    }
}
