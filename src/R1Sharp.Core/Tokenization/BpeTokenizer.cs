// Byte-level BPE (GPT-2 / tokenizers' BPE with a ByteLevel pre-tokenizer): special and added tokens are
// matched first (leftmost, longest), the text between them is normalized when the vocabulary asks for it,
// split by the pre-tokenizer, each piece's UTF-8 bytes mapped to byte tokens and merged by merge rank.
// Thread-safe: scratch buffers are per thread, the per-piece cache is concurrent.
using System.Buffers;
using System.Collections.Concurrent;
using System.Text;

namespace R1Sharp.Tokenization;

public sealed class BpeTokenizer
{
    private const int CacheMaxPieceLength = 64;
    private const int CacheMaxEntries = 1 << 17;
    private const int NaiveMergeMaxSymbols = 48;

    private readonly TokenizerData _data;
    private readonly PreTokenizer _pre;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _tokenLookup;
    private readonly Dictionary<long, long> _merges; // (left << 32 | right) -> (rank << 32 | merged id)
    private readonly int[] _byteToId = new int[256];
    private readonly byte[][] _tokenBytes;           // what each token decodes to
    private readonly SpecialTokenMatcher _special;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;

    [ThreadStatic] private static List<(int Start, int Length)>? t_pieces;

    /// <summary>
    /// Pieces a thread's list keeps for its next text; a text that needed more lets its list go, else a 1 MB prompt's
    /// hundreds of thousands of pieces would stay held by every pool thread that ever split one (8 MB each).
    /// </summary>
    internal const int MaxKeptPieces = 4096;

    /// <summary>The capacity of this thread's piece list (0 when it has none), for tests.</summary>
    internal static int KeptPieceCapacity => t_pieces?.Capacity ?? 0;

    public BpeTokenizer(TokenizerData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Model != "gpt2") throw new NotSupportedException($"Tokenizer model '{data.Model}' is not supported; only 'gpt2'.");
        if (data.TokenTypes.Length != data.Tokens.Length)
            throw new ArgumentException($"{data.TokenTypes.Length} token types for {data.Tokens.Length} tokens.", nameof(data));
        _data = data;
        _pre = PreTokenizer.ForName(data.Pre);
        string[] tokens = data.Tokens;

        _tokenToId = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = tokens.Length - 1; i >= 0; i--) _tokenToId[tokens[i]] = i; // the lowest id wins for duplicates
        _tokenLookup = _tokenToId.GetAlternateLookup<ReadOnlySpan<char>>();
        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();

        for (int b = 0; b < 256; b++)
            _byteToId[b] = _tokenToId.TryGetValue(ByteLevel.ByteToChar[b].ToString(), out int id) ? id
                : throw new InvalidDataException($"The vocabulary has no token for byte 0x{b:X2} ('{ByteLevel.ByteToChar[b]}').");

        _merges = new Dictionary<long, long>(data.Merges.Length, PairKeyComparer.Instance);
        for (int rank = 0; rank < data.Merges.Length; rank++)
        {
            string m = data.Merges[rank];
            int sp = m.IndexOf(' ', 1);
            if (sp < 0) throw new InvalidDataException($"Merge {rank} '{m}' is not 'left right'.");
            // A merge whose parts or result are not in the vocabulary can never apply.
            if (!_tokenLookup.TryGetValue(m.AsSpan(0, sp), out int l) || !_tokenLookup.TryGetValue(m.AsSpan(sp + 1), out int r)
                || !_tokenToId.TryGetValue(string.Concat(m.AsSpan(0, sp), m.AsSpan(sp + 1)), out int merged))
                continue;
            _merges.TryAdd(((long)l << 32) | (uint)r, ((long)rank << 32) | (uint)merged);
        }

        _tokenBytes = new byte[tokens.Length][];
        var tmp = new List<byte>(64);
        for (int i = 0; i < tokens.Length; i++)
        {
            if (IsRawText(data.TokenTypes[i])) { _tokenBytes[i] = Encoding.UTF8.GetBytes(tokens[i]); continue; }
            tmp.Clear();
            ByteLevel.Decode(tokens[i], tmp);
            _tokenBytes[i] = tmp.ToArray();
        }

        _special = new SpecialTokenMatcher(tokens, data.TokenTypes);
        EndOfGeneration = data.EndOfGenerationIds();
    }

    public TokenizerData Data => _data;
    public PreTokenizer PreTokenizer => _pre;
    public int VocabSize => _data.Tokens.Length;
    /// <summary>The BOS token, or null where the vocabulary has none (then no BOS is added).</summary>
    public int? BosId => _data.BosId;
    /// <summary>The EOS token, or null where the vocabulary has none (see <see cref="EndOfGeneration"/>).</summary>
    public int? EosId => _data.EosId;
    /// <summary>The BOS token's text for a chat template, "" where the vocabulary has none.</summary>
    public string BosText => _data.BosId is int b ? _data.Tokens[b] : "";
    /// <summary>The tokens after which generation stops (<see cref="TokenizerData.EndOfGenerationIds"/>).</summary>
    public IReadOnlySet<int> EndOfGeneration { get; }
    public int? PadId => _data.PadId;
    /// <summary>Whether a prompt starts with BOS: the vocabulary asks for it and has one.</summary>
    public bool AddBos => _data.AddBos && _data.BosId is not null;

    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out int id) ? id : null;
    public string IdToToken(int id) => _data.Tokens[id];
    public int TokenTypeOf(int id) => _data.TokenTypes[id];
    public bool IsControl(int id) => (uint)id < (uint)VocabSize && _data.TokenTypes[id] == Tokenization.TokenType.Control;

    /// <summary>The UTF-8 bytes token <paramref name="id"/> stands for (raw text for control and user-defined tokens).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => _tokenBytes[id];

    // Control and user-defined tokens hold their text as is; the others are in byte-level form.
    private static bool IsRawText(int type) => type is Tokenization.TokenType.Control or Tokenization.TokenType.UserDefined;

    /// <summary>
    /// Token ids for <paramref name="text"/>. With <paramref name="parseSpecial"/> control tokens written in the text
    /// (like <c>&lt;｜User｜&gt;</c>) become their ids; user-defined tokens (like <c>&lt;think&gt;</c>) always do, as in llama.cpp.
    /// </summary>
    public int[] Encode(string text, bool addBos = false, bool parseSpecial = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        if (addBos) ids.Add(BosId ?? throw new InvalidOperationException("the vocabulary has no BOS token (tokenizer.ggml.bos_token_id is missing)"));
        EncodeTo(text, ids, parseSpecial);
        return ids.ToArray();
    }

    /// <summary>Appends the token ids of <paramref name="text"/> to <paramref name="ids"/> (no bos).</summary>
    public void EncodeTo(ReadOnlySpan<char> text, List<int> ids, bool parseSpecial = true)
    {
        int pos = 0;
        while (pos < text.Length)
        {
            if (!_special.FindNext(text, pos, parseSpecial, out int start, out int length, out int id))
            {
                EncodeOrdinary(text[pos..], ids);
                return;
            }
            if (start > pos) EncodeOrdinary(text[pos..start], ids);
            ids.Add(id);
            pos = start + length;
        }
    }

    private void EncodeOrdinary(ReadOnlySpan<char> text, List<int> ids)
    {
        if (_pre.NormalizeNfc && !Nfc.IsStable(text)) text = Nfc.Normalize(text);
        var pieces = t_pieces ??= new List<(int, int)>(64);
        pieces.Clear();
        _pre.Split(text, pieces);
        foreach (var (start, length) in pieces) EncodePiece(text.Slice(start, length), ids);
        if (pieces.Capacity > MaxKeptPieces) t_pieces = null;
    }

    private void EncodePiece(ReadOnlySpan<char> piece, List<int> ids)
    {
        bool cacheable = piece.Length <= CacheMaxPieceLength;
        if (cacheable && _cacheLookup.TryGetValue(piece, out int[]? cached))
        {
            ids.AddRange(cached);
            return;
        }
        int count0 = ids.Count;
        int maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length);
        byte[]? rented = maxBytes > 512 ? ArrayPool<byte>.Shared.Rent(maxBytes) : null;
        Span<byte> bytes = rented ?? stackalloc byte[maxBytes];
        int n = Encoding.UTF8.GetBytes(piece, bytes); // lone surrogates become U+FFFD, as in Rust's String
        bytes = bytes[..n];
        if (!(_pre.IgnoreMerges && TryWholeWord(bytes, ids))) MergeBytes(bytes, ids);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        if (cacheable)
        {
            if (_cache.Count >= CacheMaxEntries) _cache.Clear();
            _cacheLookup.TryAdd(piece, ids.GetRange(count0, ids.Count - count0).ToArray());
        }
    }

    private bool TryWholeWord(ReadOnlySpan<byte> bytes, List<int> ids)
    {
        char[]? rented = bytes.Length > 256 ? ArrayPool<char>.Shared.Rent(bytes.Length) : null;
        Span<char> chars = rented ?? stackalloc char[bytes.Length];
        ByteLevel.Encode(bytes, chars);
        bool found = _tokenLookup.TryGetValue(chars[..bytes.Length], out int id) && !IsRawText(_data.TokenTypes[id]);
        if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        if (found) ids.Add(id);
        return found;
    }

    /// <summary>The BPE of one pre-token's bytes: repeatedly merge the adjacent pair of lowest rank (leftmost on ties).</summary>
    internal void MergeBytes(ReadOnlySpan<byte> bytes, List<int> ids, int naiveMax = NaiveMergeMaxSymbols)
    {
        if (bytes.Length <= naiveMax) MergeNaive(bytes, ids);
        else MergeWithHeap(bytes, ids);
    }

    // O(n^2) over a compacted array: fastest for the short pieces that are nearly all pieces.
    private void MergeNaive(ReadOnlySpan<byte> bytes, List<int> ids)
    {
        int n = bytes.Length;
        Span<int> sym = stackalloc int[n];
        Span<long> pair = stackalloc long[n]; // (rank << 32 | merged id) of (sym[i], sym[i + 1]), long.MaxValue when none
        for (int i = 0; i < n; i++) sym[i] = _byteToId[bytes[i]];
        for (int i = 0; i + 1 < n; i++) pair[i] = PairOf(sym[i], sym[i + 1]);
        while (n > 1)
        {
            int best = -1;
            long bestKey = long.MaxValue;
            for (int i = 0; i + 1 < n; i++)
                if (pair[i] < bestKey) { bestKey = pair[i]; best = i; }
            if (best < 0) break;
            sym[best] = (int)(uint)bestKey;
            sym[(best + 2)..n].CopyTo(sym[(best + 1)..]);
            pair[(best + 2)..n].CopyTo(pair[(best + 1)..]);
            n--;
            if (best > 0) pair[best - 1] = PairOf(sym[best - 1], sym[best]);
            pair[best] = best + 1 < n ? PairOf(sym[best], sym[best + 1]) : long.MaxValue;
        }
        for (int i = 0; i < n; i++) ids.Add(sym[i]);
    }

    // A linked list of symbols and a heap of candidate pairs ordered by (rank, position), as tokenizers' Word::merge_all.
    private void MergeWithHeap(ReadOnlySpan<byte> bytes, List<int> ids)
    {
        int n = bytes.Length;
        var sym = new int[n];
        var prev = new int[n];
        var next = new int[n];
        var heap = new PriorityQueue<int, (long Rank, int Pos)>();
        for (int i = 0; i < n; i++) { sym[i] = _byteToId[bytes[i]]; prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        for (int i = 0; i + 1 < n; i++)
            if (PairOf(sym[i], sym[i + 1]) is long p && p != long.MaxValue) heap.Enqueue(i, (p >> 32, i));
        while (heap.TryDequeue(out int pos, out var key))
        {
            if (sym[pos] < 0 || next[pos] < 0) continue;
            int right = next[pos];
            long p = PairOf(sym[pos], sym[right]);
            if (p == long.MaxValue || p >> 32 != key.Rank) continue; // stale entry
            sym[pos] = (int)(uint)p;
            sym[right] = -1;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0 && PairOf(sym[prev[pos]], sym[pos]) is long pl && pl != long.MaxValue)
                heap.Enqueue(prev[pos], (pl >> 32, prev[pos]));
            if (next[pos] >= 0 && PairOf(sym[pos], sym[next[pos]]) is long pr && pr != long.MaxValue)
                heap.Enqueue(pos, (pr >> 32, pos));
        }
        for (int i = 0; i >= 0; i = next[i]) ids.Add(sym[i]);
    }

    private long PairOf(int left, int right) =>
        _merges.TryGetValue(((long)left << 32) | (uint)right, out long v) ? v : long.MaxValue;

    /// <summary>The text of <paramref name="ids"/>: the concatenated bytes of the tokens, decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipControl: false);

    /// <summary>As <see cref="Decode(ReadOnlySpan{int})"/>, leaving out control tokens (bos, eos, role tags) when asked.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipControl)
    {
        var buf = new ArrayBufferWriter<byte>(ids.Length * 4 + 16);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {id} is outside the vocabulary (size {VocabSize}).");
            if (skipControl && IsControl(id)) continue;
            buf.Write(_tokenBytes[id]);
        }
        return Encoding.UTF8.GetString(buf.WrittenSpan);
    }

    public StreamingDecoder CreateStreamingDecoder(bool skipControl = false) => new(this, skipControl);
}

// long's own hash is low ^ high, which sends every (x, x) pair to one bucket; Fibonacci hashing spreads them.
internal sealed class PairKeyComparer : IEqualityComparer<long>
{
    public static readonly PairKeyComparer Instance = new();
    public bool Equals(long a, long b) => a == b;
    public int GetHashCode(long k) => (int)(((ulong)k * 0x9E3779B97F4A7C15UL) >> 32);
}

/// <summary>
/// Turns tokens into text one at a time without ever splitting a UTF-8 character: bytes of an incomplete
/// character wait for the next token. The concatenated output equals <see cref="BpeTokenizer.Decode(ReadOnlySpan{int})"/>.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly BpeTokenizer _tokenizer;
    private readonly bool _skipControl;
    private readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    private char[] _chars = new char[64];

    internal StreamingDecoder(BpeTokenizer tokenizer, bool skipControl) { _tokenizer = tokenizer; _skipControl = skipControl; }

    /// <summary>The text that token <paramref name="id"/> completes (possibly empty).</summary>
    public string Push(int id)
    {
        if ((uint)id >= (uint)_tokenizer.VocabSize) throw new ArgumentOutOfRangeException(nameof(id), $"Token id {id} is outside the vocabulary.");
        if (_skipControl && _tokenizer.IsControl(id)) return "";
        return Convert(_tokenizer.TokenBytes(id), flush: false);
    }

    /// <summary>Ends the stream: bytes of a character never completed come out as U+FFFD.</summary>
    public string Flush() => Convert([], flush: true);

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        int need = _utf8.GetCharCount(bytes, flush);
        if (need > _chars.Length) _chars = new char[Math.Max(need, _chars.Length * 2)];
        int n = _utf8.GetChars(bytes, _chars, flush);
        return n == 0 ? "" : new string(_chars, 0, n);
    }
}
