// A forward-pass batch: tokens from one or more sequences, each with its position and KV-cache slot.
// A prompt chunk, one decode token per running sequence, or a mix of both go through the same pass.
namespace R1Sharp.Engine;

public sealed class Batch
{
    private int[] _tokens;
    private int[] _positions;
    private int[] _slots;
    private bool[] _logits;

    public Batch(int capacity = 16)
    {
        _tokens = new int[capacity];
        _positions = new int[capacity];
        _slots = new int[capacity];
        _logits = new bool[capacity];
    }

    public int Count { get; private set; }

    /// <summary>Tokens the batch holds without growing.</summary>
    public int Capacity => _tokens.Length;

    /// <summary>Number of tokens whose logits were requested; the forward pass writes that many rows.</summary>
    public int LogitCount { get; private set; }

    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Count);
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, Count);
    public ReadOnlySpan<int> Slots => _slots.AsSpan(0, Count);
    public ReadOnlySpan<bool> WantsLogits => _logits.AsSpan(0, Count);

    public void Clear()
    {
        Count = 0;
        LogitCount = 0;
    }

    /// <summary>Adds one token of the sequence in KV-cache <paramref name="slot"/> at position <paramref name="pos"/>.</summary>
    public void Add(int token, int pos, int slot, bool logits)
    {
        if (Count == _tokens.Length)
        {
            int n = Math.Max(16, Count * 2);
            Array.Resize(ref _tokens, n);
            Array.Resize(ref _positions, n);
            Array.Resize(ref _slots, n);
            Array.Resize(ref _logits, n);
        }
        _tokens[Count] = token;
        _positions[Count] = pos;
        _slots[Count] = slot;
        _logits[Count] = logits;
        Count++;
        if (logits) LogitCount++;
    }

    /// <summary>Adds consecutive tokens of one sequence starting at <paramref name="startPos"/>; logits for the last one only unless <paramref name="allLogits"/>.</summary>
    public void AddSequence(ReadOnlySpan<int> tokens, int startPos, int slot, bool allLogits = false)
    {
        for (int i = 0; i < tokens.Length; i++)
            Add(tokens[i], startPos + i, slot, allLogits || i == tokens.Length - 1);
    }
}
