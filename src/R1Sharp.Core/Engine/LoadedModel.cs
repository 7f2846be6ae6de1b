// A model file opened for use: the GGUF file, its tokenizer, the architecture's forward pass and the worker threads.
// The model answers from the file's mapping at once while a background task copies the file into memory, and then
// moves to the copy between two forward passes: the same results, read faster.
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tokenization;

namespace R1Sharp.Engine;

public sealed class LoadedModel : IDisposable
{
    private LoadedModel(GgufFile file, ComputePool pool, bool ownsPool, ICausalLM model, BpeTokenizer tokenizer)
    {
        _file = file;
        Pool = pool;
        _ownsPool = ownsPool;
        _model = new MovingModel(model);
        Tokenizer = tokenizer;
    }

    private readonly MovingModel _model;
    private readonly bool _ownsPool;
    private volatile GgufFile _file;
    private readonly CancellationTokenSource _stopMove = new();
    /// <summary>Set once the move no longer reads the mapping (copied, stopped or failed).</summary>
    private readonly ManualResetEventSlim _copied = new(true);
    /// <summary>Held to move the model to the copy, and to mark this object disposed.</summary>
    private readonly Lock _moveGate = new();
    private bool _disposed;

    /// <summary>The file the model runs from now: the mapping, then its in-memory copy once <see cref="InMemory"/> is done.</summary>
    public GgufFile File => _file;
    public ComputePool Pool { get; }
    public ICausalLM Model => _model;
    public BpeTokenizer Tokenizer { get; }
    public ModelConfig Config => Model.Config;

    /// <summary>
    /// Done when the model runs from the in-memory copy of the file (at once where the file stays mapped); faulted
    /// where the copy failed, the model then running from the mapping.
    /// </summary>
    public Task InMemory { get; private set; } = Task.CompletedTask;

    /// <summary>
    /// Why the weights stay in the file mapping though a copy was asked for (the file is too large for the memory
    /// available), or null.
    /// </summary>
    public string? StaysMapped { get; private set; }

    /// <summary>The share of the memory available (<see cref="SystemMemory"/>) that a copy of the file may take.</summary>
    public const double MaxCopyShare = 0.8;

    /// <summary>
    /// Opens <paramref name="path"/>; <paramref name="threads"/> 0 uses every core. The model runs from the file's
    /// mapping when this returns, and a background task copies the weights into memory with huge pages
    /// (<see cref="GgufFile.CopyToMemory"/>: faster decode), then moves the model to the copy between two forward
    /// passes (<see cref="InMemory"/>), unless <paramref name="mmap"/> keeps it on the mapping (no copy, pages shared
    /// with other processes), or the file is larger than <see cref="MaxCopyShare"/> of the memory available
    /// (<see cref="StaysMapped"/> says so: the page cache can still evict what the mapping does not need). The copy's
    /// Q8_0, Q4_K, Q6_K and Q5_0 matrices are interleaved for decode (<see cref="WeightMatrix.Interleave"/>), and read that
    /// way from the mapping until then (<see cref="WeightMatrix.InterleaveOnRead"/>: the same results), unless
    /// <paramref name="repack"/> is false.
    /// </summary>
    public static LoadedModel Load(string path, int threads = 0, bool mmap = false, bool repack = true) =>
        Load(path, threads, mmap, repack, SystemMemory.Available());

    /// <summary>
    /// As <see cref="Load(string, int, bool, bool)"/>, on the worker threads of <paramref name="pool"/>, which the
    /// caller keeps owning: a draft model runs on its target's pool, one pass after the other, so that the two pools'
    /// idle spinning never competes for the cores.
    /// </summary>
    public static LoadedModel Load(string path, ComputePool pool, bool mmap = false, bool repack = true) =>
        Load(path, 0, mmap, repack, SystemMemory.Available(), pool);

    /// <summary>As the public Load, with the bytes of memory available given (null: unknown, no limit).</summary>
    internal static LoadedModel Load(string path, int threads, bool mmap, bool repack, long? memoryAvailable, ComputePool? sharedPool = null)
    {
        var file = GgufFile.Open(path);
        string? staysMapped = !mmap && memoryAvailable is long available && file.FileSize > available * MaxCopyShare
            ? $"the file ({file.FileSize / 1e9:F1} GB) is larger than {MaxCopyShare:P0} of the memory available ({available / 1e9:F1} GB)"
            : null;
        bool move = !mmap && staysMapped is null;
        // a mapping that stays is read at its best in its own layout; one the model leaves soon, as the copy will be
        file.RepackWeights = repack && move;
        ComputePool? pool = null;
        try
        {
            var tokenizer = new BpeTokenizer(TokenizerData.FromGgufMetadata(file.Metadata));
            pool = sharedPool ?? new ComputePool(threads > 0 ? threads : Environment.ProcessorCount);
            var model = ModelRegistry.Load(file, pool);
            if (tokenizer.VocabSize > model.Config.VocabSize)
                throw new InvalidDataException($"the tokenizer has {tokenizer.VocabSize} tokens but token_embd.weight only {model.Config.VocabSize} rows");
            var lm = new LoadedModel(file, pool, sharedPool is null, model, tokenizer) { StaysMapped = staysMapped };
            if (move)
            {
                lm._copied.Reset();
                lm.InMemory = Task.Factory.StartNew(lm.MoveToMemory, TaskCreationOptions.LongRunning);
            }
            return lm;
        }
        catch
        {
            if (sharedPool is null) pool?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies the file and builds the model over the copy (interleaving its weights) on this background thread alone,
    /// at a lower priority than the forward passes, which it shares the cores with; then moves the model to it. Where
    /// this object was disposed meanwhile, what was built is released instead.
    /// </summary>
    private void MoveToMemory()
    {
        LowPriority.ThisThread();
        GgufFile mapped = _file;
        GgufFile copy;
        try
        {
            // the first answer goes first: the copy waits for a first pass to end, unless none starts soon
            _model.FirstPassDone.Wait(FirstPassWait, _stopMove.Token);
            _model.WaitForPassInFlight();
            copy = mapped.CopyToMemory(threads: 1, _stopMove.Token);
        }
        finally
        {
            _copied.Set();
        }
        ICausalLM? model = null;
        try
        {
            using (var repackPool = new ComputePool(1))
                model = ModelRegistry.Load(copy, Pool, repackPool);
            ICausalLM left;
            lock (_moveGate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                left = _model.MoveTo(model);
                _file = copy;
            }
            left.Dispose();
            mapped.Dispose();
        }
        catch
        {
            model?.Dispose();
            copy.Dispose();
            throw;
        }
    }

    /// <summary>The memory the system can give without swapping, in bytes (<see cref="SystemMemory"/>), or null when unknown.</summary>
    public static long? MemoryAvailable() => SystemMemory.Available();

    /// <summary>How long the move waits for a first pass to start and end before it copies anyway (a chat waiting for its first message).</summary>
    private static readonly TimeSpan FirstPassWait = TimeSpan.FromMilliseconds(200);

    /// <summary>Tokens after which generation stops: eos and the other end-of-turn control tokens.</summary>
    public bool IsEndOfGeneration(int id) => Tokenizer.EndOfGeneration.Contains(id);

    /// <summary>
    /// Releases the model, its threads and its file. A move in progress stops copying within a 64 MiB piece; one that
    /// is building the model over its copy releases both when it is done.
    /// </summary>
    public void Dispose()
    {
        lock (_moveGate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _stopMove.Cancel();
        _copied.Wait();
        _model.Dispose();
        if (_ownsPool) Pool.Dispose();
        _file.Dispose();
    }

    /// <summary>
    /// The model the engine holds while the weights move: forward passes run on one model, then, between two passes,
    /// on the other (whose results are the same).
    /// </summary>
    private sealed class MovingModel : ICausalLM
    {
        private ICausalLM _model;
        private readonly Lock _pass = new();

        public MovingModel(ICausalLM model)
        {
            _model = model;
            Mtp = model.Mtp is null ? null : new MovingMtp(this);
        }

        public ModelConfig Config => _model.Config;

        public KvCache CreateCache(int slots, int capacity, Tensors.GgmlType kType = Tensors.GgmlType.F32, Tensors.GgmlType? vType = null) => _model.CreateCache(slots, capacity, kType, vType);

        public IMatMulObserver? Observer
        {
            get => _model.Observer;
            set
            {
                lock (_pass) _model.Observer = value;
            }
        }

        /// <summary>Set when a first forward pass has ended.</summary>
        public ManualResetEventSlim FirstPassDone { get; } = new();

        public void Forward(Batch batch, KvCache cache, Span<float> logits) => Forward(batch, cache, logits, default);

        public void Forward(Batch batch, KvCache cache, Span<float> logits, Span<float> hidden)
        {
            lock (_pass) _model.Forward(batch, cache, logits, hidden);
            FirstPassDone.Set();
        }

        /// <summary>The MTP head of whichever model runs now, its passes serialized with the main ones.</summary>
        public IMtpHead? Mtp { get; }

        private sealed class MovingMtp(MovingModel m) : IMtpHead
        {
            public int Dim => m._model.Mtp!.Dim;

            public KvCache CreateCache(int slots, int capacity, Tensors.GgmlType type = Tensors.GgmlType.F32) => m._model.Mtp!.CreateCache(slots, capacity, type);

            public void Forward(Batch batch, ReadOnlySpan<float> hidden, KvCache cache, Span<float> logits, Span<float> hiddenOut)
            {
                lock (m._pass) m._model.Mtp!.Forward(batch, hidden, cache, logits, hiddenOut);
            }
        }

        /// <summary>Returns once no pass is running (one may start right after).</summary>
        public void WaitForPassInFlight()
        {
            lock (_pass) { }
        }

        /// <summary>Runs on <paramref name="next"/> from the next pass on; returns the model left, no longer in use.</summary>
        public ICausalLM MoveTo(ICausalLM next)
        {
            lock (_pass)
            {
                ICausalLM left = _model;
                next.Observer = left.Observer;
                _model = next;
                return left;
            }
        }

        public void Dispose() => _model.Dispose();
    }
}
