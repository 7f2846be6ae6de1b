// Pre-tokenizers of byte-level BPE vocabularies, chosen by `tokenizer.ggml.pre`. Each regex of the
// Hugging Face tokenizer.json is a hand-written matcher over code points (not UTF-16 units, so astral
// letters and emoji are classed correctly) with the leftmost-first semantics of Oniguruma/Rust regex.
// Like tokenizers' Split(behavior: Isolated), the text between matches is kept as pieces too.
namespace R1Sharp.Tokenization;

public enum PreTokenizerKind
{
    /// <summary>Qwen2: <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>, after NFC.</summary>
    Qwen2,
    /// <summary>Llama 3: as Qwen2 but <c>\p{N}{1,3}</c>, no normalization, and whole words found in the vocabulary skip the merges.</summary>
    Llama3,
    /// <summary>DeepSeek-V3: Isolated splits <c>\p{N}{1,3}</c>, then <c>[一-龥぀-ゟ゠-ヿ]+</c>, then a large regex; no normalization.</summary>
    DeepSeekV3,
}

public sealed class PreTokenizer
{
    private static readonly Dictionary<string, PreTokenizerKind> s_names = new(StringComparer.Ordinal)
    {
        ["qwen2"] = PreTokenizerKind.Qwen2,
        ["deepseek-r1-qwen"] = PreTokenizerKind.Qwen2,
        ["llama-bpe"] = PreTokenizerKind.Llama3,
        ["llama3"] = PreTokenizerKind.Llama3,
        ["deepseek-v3"] = PreTokenizerKind.DeepSeekV3,
    };

    /// <summary>The <c>tokenizer.ggml.pre</c> names this engine implements.</summary>
    public static IReadOnlyCollection<string> KnownNames => s_names.Keys;

    public static bool IsKnown(string name) => s_names.ContainsKey(name);

    public string Name { get; }
    public PreTokenizerKind Kind { get; }
    /// <summary>The Hugging Face tokenizer applies NFC before splitting (Qwen2).</summary>
    public bool NormalizeNfc => Kind == PreTokenizerKind.Qwen2;
    /// <summary>A pre-token that is itself a vocabulary entry becomes that token without merges (tokenizers' ignore_merges).</summary>
    public bool IgnoreMerges => Kind == PreTokenizerKind.Llama3;

    private PreTokenizer(string name, PreTokenizerKind kind) { Name = name; Kind = kind; }

    /// <summary>The pre-tokenizer for a <c>tokenizer.ggml.pre</c> name; an unknown name is an error, never "no splitting".</summary>
    public static PreTokenizer ForName(string name) =>
        s_names.TryGetValue(name, out var kind)
            ? new PreTokenizer(name, kind)
            : throw new NotSupportedException(
                $"Unknown pre-tokenizer tokenizer.ggml.pre = '{name}'; known: {string.Join(", ", s_names.Keys)}.");

    /// <summary>Appends the pieces of <paramref name="text"/> as (start, length) in UTF-16 units, in order, covering all of it.</summary>
    public void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        if (text.IsEmpty) return;
        if (Kind == PreTokenizerKind.DeepSeekV3) SplitStage(0, text, 0, text.Length, pieces);
        else SplitStage(2, text, 0, text.Length, pieces);
    }

    // Stages: 0 = DeepSeek-V3 digits, 1 = DeepSeek-V3 CJK, 2 = the final regex of the kind.
    private void SplitStage(int stage, ReadOnlySpan<char> s, int start, int end, List<(int, int)> pieces)
    {
        ReadOnlySpan<char> t = s[..end];
        int pos = start;
        while (pos < end)
        {
            int ms = pos, me = -1;
            while (ms < end)
            {
                me = MatchAt(stage, t, ms);
                if (me >= 0) break;
                ms += char.IsHighSurrogate(t[ms]) && ms + 1 < end && char.IsLowSurrogate(t[ms + 1]) ? 2 : 1;
            }
            if (ms > pos) Emit(stage, s, pos, ms, pieces);
            if (me < 0) break;
            Emit(stage, s, ms, me, pieces);
            pos = me;
        }
    }

    private void Emit(int stage, ReadOnlySpan<char> s, int start, int end, List<(int, int)> pieces)
    {
        if (stage == 2) pieces.Add((start, end - start));
        else SplitStage(stage + 1, s, start, end, pieces);
    }

    /// <summary>The end of the match starting at <paramref name="i"/>, or -1; <paramref name="s"/> ends where the piece ends.</summary>
    private int MatchAt(int stage, ReadOnlySpan<char> s, int i) => stage switch
    {
        0 => MatchDigits(s, i, 3),
        1 => MatchCjk(s, i),
        _ => Kind switch
        {
            PreTokenizerKind.Qwen2 => MatchGpt2Style(s, i, 1),
            PreTokenizerKind.Llama3 => MatchGpt2Style(s, i, 3),
            _ => MatchDeepSeekV3(s, i),
        },
    };

    private static CharClass ClassAt(ReadOnlySpan<char> s, int i, out int len) => UnicodeFlags.Of(UnicodeFlags.CodePointAt(s, i, out len));

    // \p{N}{1,max}
    private static int MatchDigits(ReadOnlySpan<char> s, int i, int max)
    {
        int j = i;
        for (int n = 0; n < max && j < s.Length; n++)
        {
            if ((ClassAt(s, j, out int l) & CharClass.Number) == 0) break;
            j += l;
        }
        return j > i ? j : -1;
    }

    // [一-龥぀-ゟ゠-ヿ]+ : U+4E00..U+9FA5, U+3040..U+30FF (all in the BMP)
    private static int MatchCjk(ReadOnlySpan<char> s, int i)
    {
        int j = i;
        while (j < s.Length && IsCjk(s[j])) j++;
        return j > i ? j : -1;
        static bool IsCjk(char c) => (c >= '\u4E00' && c <= '\u9FA5') || (c >= '\u3040' && c <= '\u30FF');
    }

    // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    private static int MatchGpt2Style(ReadOnlySpan<char> s, int i, int maxDigits)
    {
        int n = s.Length;
        char c0 = s[i];
        if (c0 == '\'' && i + 1 < n)
        {
            char a = (char)(s[i + 1] | 0x20);
            if (s[i + 1] < 128 && a is 's' or 't' or 'm' or 'd') return i + 2;
            if (i + 2 < n && s[i + 1] < 128 && s[i + 2] < 128)
            {
                char b = (char)(s[i + 2] | 0x20);
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
            }
        }
        CharClass f = ClassAt(s, i, out int l0);
        if ((f & CharClass.Letter) != 0) return ScanWhile(s, i + l0, CharClass.Letter);
        if ((f & (CharClass.Letter | CharClass.Number | CharClass.NewLine)) == 0 && i + l0 < n
            && (ClassAt(s, i + l0, out int l1) & CharClass.Letter) != 0)
            return ScanWhile(s, i + l0 + l1, CharClass.Letter);
        if ((f & CharClass.Number) != 0) return MatchDigits(s, i, maxDigits);
        int j = c0 == ' ' ? i + 1 : i;
        int k = ScanWhileNot(s, j, CharClass.Space | CharClass.Letter | CharClass.Number);
        if (k > j) return ScanNewLines(s, k);
        return (f & CharClass.Space) != 0 ? MatchSpaces(s, i) : -1;
    }

    // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    private static int MatchDeepSeekV3(ReadOnlySpan<char> s, int i)
    {
        int n = s.Length;
        char c0 = s[i];
        if (char.IsAsciiLetter(c0) == false && c0 > ' ' && c0 < 127 && !char.IsAsciiDigit(c0)
            && i + 1 < n && char.IsAsciiLetter(s[i + 1]))
        {
            int e = i + 2;
            while (e < n && char.IsAsciiLetter(s[e])) e++;
            return e;
        }
        const CharClass LM = CharClass.Letter | CharClass.Mark;
        CharClass f = ClassAt(s, i, out int l0);
        if ((f & LM) != 0) return ScanWhile(s, i + l0, LM);
        if ((f & (CharClass.Letter | CharClass.Punct | CharClass.Symbol | CharClass.NewLine)) == 0 && i + l0 < n
            && (ClassAt(s, i + l0, out int l1) & LM) != 0)
            return ScanWhile(s, i + l0 + l1, LM);
        int j = c0 == ' ' ? i + 1 : i;
        int k = ScanWhile(s, j, CharClass.Punct | CharClass.Symbol);
        if (k > j) return ScanNewLines(s, k);
        return (f & CharClass.Space) != 0 ? MatchSpaces(s, i) : -1;
    }

    // \s*[\r\n]+|\s+(?!\S)|\s+ at a whitespace character
    private static int MatchSpaces(ReadOnlySpan<char> s, int i)
    {
        int e = i, lastNewLine = -1, lastStart = i;
        while (e < s.Length)
        {
            CharClass f = ClassAt(s, e, out int l);
            if ((f & CharClass.Space) == 0) break;
            if ((f & CharClass.NewLine) != 0) lastNewLine = e;
            lastStart = e;
            e += l;
        }
        if (lastNewLine >= 0) return lastNewLine + 1;   // \s* backtracks to the last newline of the run
        if (e == s.Length || lastStart == i) return e;  // \s+(?!\S) at the end, or \s+ for a single space
        return lastStart;                               // \s+(?!\S) leaves the last space to the next word
    }

    private static int ScanWhile(ReadOnlySpan<char> s, int j, CharClass any)
    {
        while (j < s.Length && (ClassAt(s, j, out int l) & any) != 0) j += l;
        return j;
    }

    private static int ScanWhileNot(ReadOnlySpan<char> s, int j, CharClass none)
    {
        while (j < s.Length && (ClassAt(s, j, out int l) & none) == 0) j += l;
        return j;
    }

    private static int ScanNewLines(ReadOnlySpan<char> s, int j)
    {
        while (j < s.Length && s[j] is '\r' or '\n') j++;
        return j;
    }
}
