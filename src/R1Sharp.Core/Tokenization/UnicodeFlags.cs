// Per-code-point character classes for the pre-tokenizer regexes (\p{L}, \p{N}, \p{P}, \p{S}, \p{M}, \s),
// one byte per code point so the hand-written matchers test a class with one load.
using System.Globalization;

namespace R1Sharp.Tokenization;

[Flags]
internal enum CharClass : byte
{
    None = 0,
    Letter = 1,      // \p{L}
    Number = 2,      // \p{N}
    Punct = 4,       // \p{P}
    Symbol = 8,      // \p{S}
    Mark = 16,       // \p{M}
    Space = 32,      // \s: the Unicode White_Space property, as Oniguruma and Rust regex use it
    NewLine = 64,    // \r or \n
}

internal static class UnicodeFlags
{
    private static readonly byte[] s_table = Build();

    public static CharClass Of(int cp) => (CharClass)s_table[cp];

    /// <summary>Decodes the code point at <paramref name="i"/> (a lone surrogate stands for itself) and its UTF-16 length.</summary>
    public static int CodePointAt(ReadOnlySpan<char> s, int i, out int len)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            len = 2;
            return char.ConvertToUtf32(c, s[i + 1]);
        }
        len = 1;
        return c;
    }

    private static byte[] Build()
    {
        var t = new byte[0x110000];
        for (int cp = 0; cp < t.Length; cp++)
        {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue; // lone surrogates: category Cs, no class
            CharClass f = CharUnicodeInfo.GetUnicodeCategory(cp) switch
            {
                UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                    or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
                UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => CharClass.Mark,
                UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
                UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                    or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                    or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => CharClass.Punct,
                UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                    or UnicodeCategory.OtherSymbol => CharClass.Symbol,
                _ => CharClass.None,
            };
            t[cp] = (byte)f;
        }
        foreach (int cp in (ReadOnlySpan<int>)[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000])
            t[cp] |= (byte)CharClass.Space;
        for (int cp = 0x2000; cp <= 0x200A; cp++) t[cp] |= (byte)CharClass.Space;
        t['\r'] |= (byte)CharClass.NewLine;
        t['\n'] |= (byte)CharClass.NewLine;
        return t;
    }
}
