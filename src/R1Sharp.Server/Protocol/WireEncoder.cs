// JSON string escaping as the OpenAI and DeepSeek APIs send it: only what JSON requires is escaped (the quote, the
// backslash and control characters), so "17+25", "<think>", "&" and any non-ASCII text (CJK, emoji, U+FF5C in
// DeepSeek's special tokens) travel as themselves. System.Text.Json's encoders escape all of these by default (and
// its "relaxed" one still escapes characters outside the Basic Multilingual Plane).
using System.Text.Encodings.Web;

namespace R1Sharp.Server.Protocol;

public sealed class WireEncoder : JavaScriptEncoder
{
    public static readonly WireEncoder Instance = new();

    private WireEncoder() { }

    // a lone surrogate is written as \uXXXX, the widest escape of one UTF-16 unit
    public override int MaxOutputCharactersPerInputCharacter => 6;

    public override bool WillEncode(int unicodeScalar) =>
        unicodeScalar < 0x20 || unicodeScalar == '"' || unicodeScalar == '\\' || unicodeScalar is >= 0xD800 and <= 0xDFFF;

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        for (int i = 0; i < textLength; i++)
        {
            char c = text[i];
            if (c < 0x20 || c == '"' || c == '\\') return i;
            if (char.IsHighSurrogate(c) && i + 1 < textLength && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) return i;
        }
        return -1;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        if (!WillEncode(unicodeScalar))
        {
            // an allowed scalar value, written as itself (one or two UTF-16 units)
            var rune = new System.Text.Rune(unicodeScalar);
            numberOfCharactersWritten = rune.EncodeToUtf16(new Span<char>(buffer, bufferLength));
            return numberOfCharactersWritten > 0;
        }
        char shortForm = unicodeScalar switch
        {
            '"' => '"', '\\' => '\\', '\n' => 'n', '\r' => 'r', '\t' => 't', '\b' => 'b', '\f' => 'f', _ => '\0',
        };
        int needed = shortForm != '\0' ? 2 : 6;
        if (bufferLength < needed) { numberOfCharactersWritten = 0; return false; }
        buffer[0] = '\\';
        if (shortForm != '\0') buffer[1] = shortForm;
        else
        {
            buffer[1] = 'u';
            for (int k = 0; k < 4; k++) buffer[2 + k] = "0123456789abcdef"[(unicodeScalar >> (12 - 4 * k)) & 0xF];
        }
        numberOfCharactersWritten = needed;
        return true;
    }
}
