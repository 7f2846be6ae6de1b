// GPT-2's reversible byte <-> printable-character mapping used by byte-level BPE vocabularies
// (tokenizers' ByteLevel, llama.cpp's unicode_byte_to_utf8): every byte gets a visible character.
namespace R1Sharp.Tokenization;

public static class ByteLevel
{
    /// <summary>The character that stands for each byte (index = byte value).</summary>
    public static ReadOnlySpan<char> ByteToChar => s_byteToChar;

    /// <summary>The bytes in GPT-2's vocabulary order: printable bytes first (33..126, 161..172, 174..255), then the rest.</summary>
    public static ReadOnlySpan<byte> VocabOrder => s_vocabOrder;

    private static readonly char[] s_byteToChar;
    private static readonly byte[] s_vocabOrder;
    private static readonly short[] s_charToByte; // index = char (< 324), -1 when not a byte character

    static ByteLevel()
    {
        s_byteToChar = new char[256];
        s_vocabOrder = new byte[256];
        int k = 0;
        for (int b = 0; b < 256; b++)
            if (IsPrintable(b)) { s_byteToChar[b] = (char)b; s_vocabOrder[k++] = (byte)b; }
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!IsPrintable(b)) { s_byteToChar[b] = (char)(256 + n++); s_vocabOrder[k++] = (byte)b; }
        s_charToByte = new short[256 + n];
        Array.Fill(s_charToByte, (short)-1);
        for (int b = 0; b < 256; b++) s_charToByte[s_byteToChar[b]] = (short)b;
    }

    private static bool IsPrintable(int b) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);

    /// <summary>The byte a character stands for, or -1 when it is not one of the 256 byte characters.</summary>
    public static int CharToByte(char c) => c < s_charToByte.Length ? s_charToByte[c] : -1;

    /// <summary>Appends the byte-level form of UTF-8 <paramref name="utf8"/> to <paramref name="dst"/>.</summary>
    public static int Encode(ReadOnlySpan<byte> utf8, Span<char> dst)
    {
        for (int i = 0; i < utf8.Length; i++) dst[i] = s_byteToChar[utf8[i]];
        return utf8.Length;
    }

    /// <summary>The byte-level string for a piece of text (as stored in byte-level BPE vocabularies).</summary>
    public static string Encode(string text)
    {
        byte[] utf8 = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(utf8.Length, utf8, static (dst, src) => Encode(src, dst));
    }

    /// <summary>
    /// Appends the bytes a byte-level token text stands for. A character outside the byte map (never in a
    /// well-formed vocabulary) is appended as its own UTF-8, as llama.cpp does.
    /// </summary>
    public static void Decode(ReadOnlySpan<char> token, List<byte> dst)
    {
        Span<byte> tmp = stackalloc byte[4];
        for (int i = 0; i < token.Length; i++)
        {
            int b = CharToByte(token[i]);
            if (b >= 0) { dst.Add((byte)b); continue; }
            int len = char.IsHighSurrogate(token[i]) && i + 1 < token.Length && char.IsLowSurrogate(token[i + 1]) ? 2 : 1;
            int n = System.Text.Encoding.UTF8.GetBytes(token.Slice(i, len), tmp);
            for (int j = 0; j < n; j++) dst.Add(tmp[j]);
            i += len - 1;
        }
    }
}
