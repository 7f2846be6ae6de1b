// Unicode NFC (canonical decomposition, canonical ordering, canonical composition), which Qwen's
// tokenizer.json applies before pre-tokenizing. Hand-written because string.Normalize does nothing
// under InvariantGlobalization; the tables come from tools/gen-nfc-tables.py.
namespace R1Sharp.Tokenization;

public static class Nfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Dictionary<int, byte> s_ccc = new();
    private static readonly Dictionary<int, int> s_decompOffset = new(); // cp -> offset of (n, cps...) in the table
    private static readonly Dictionary<long, int> s_compose = new();
    private static readonly ulong[] s_unstable = new ulong[0x110000 / 64]; // may change under NFC when present

    static Nfc()
    {
        ReadOnlySpan<int> r = NfcTables.CombiningClassRanges;
        for (int i = 0; i < r.Length; i += 3)
            for (int cp = r[i]; cp <= r[i + 1]; cp++) { s_ccc[cp] = (byte)r[i + 2]; Mark(cp); }
        ReadOnlySpan<int> d = NfcTables.Decompositions;
        for (int i = 0; i < d.Length; i += 2 + d[i + 1]) { s_decompOffset[d[i]] = i + 1; Mark(d[i]); }
        ReadOnlySpan<int> c = NfcTables.Compositions;
        for (int i = 0; i < c.Length; i += 3) { s_compose[((long)c[i] << 32) | (uint)c[i + 1]] = c[i + 2]; Mark(c[i + 1]); }
        for (int cp = VBase; cp < VBase + VCount; cp++) Mark(cp);
        for (int cp = TBase + 1; cp < TBase + TCount; cp++) Mark(cp);

        static void Mark(int cp) => s_unstable[cp >> 6] |= 1UL << (cp & 63);
    }

    /// <summary>The Unicode version of the tables.</summary>
    public static string UnicodeVersion => NfcTables.UnicodeVersion;

    /// <summary>True when no character of <paramref name="s"/> can change under NFC (the common case, checked fast).</summary>
    public static bool IsStable(ReadOnlySpan<char> s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char ch = s[i];
            if (ch < 0x300) continue;
            int cp = UnicodeFlags.CodePointAt(s, i, out int len);
            if ((s_unstable[cp >> 6] & (1UL << (cp & 63))) != 0) return false;
            i += len - 1;
        }
        return true;
    }

    /// <summary>The NFC form of <paramref name="s"/>.</summary>
    public static string Normalize(string s) => IsStable(s) ? s : NormalizeSlow(s);

    /// <summary>The NFC form of <paramref name="s"/>, as a new string.</summary>
    public static string Normalize(ReadOnlySpan<char> s) => IsStable(s) ? s.ToString() : NormalizeSlow(s);

    private static int Ccc(int cp) => cp >= 0x300 && s_ccc.TryGetValue(cp, out byte c) ? c : 0;

    private static string NormalizeSlow(ReadOnlySpan<char> s)
    {
        // 1. full canonical decomposition
        var buf = new List<int>(s.Length + 8);
        for (int i = 0; i < s.Length; i++)
        {
            int cp = UnicodeFlags.CodePointAt(s, i, out int len);
            i += len - 1;
            if (cp >= SBase && cp < SBase + SCount)
            {
                int si = cp - SBase;
                buf.Add(LBase + si / NCount);
                buf.Add(VBase + si % NCount / TCount);
                if (si % TCount != 0) buf.Add(TBase + si % TCount);
            }
            else if (s_decompOffset.TryGetValue(cp, out int off))
            {
                ReadOnlySpan<int> d = NfcTables.Decompositions;
                for (int k = 0; k < d[off]; k++) buf.Add(d[off + 1 + k]);
            }
            else buf.Add(cp);
        }
        // 2. canonical ordering: stable sort of each run of non-starters by combining class
        for (int i = 1; i < buf.Count; i++)
        {
            int cc = Ccc(buf[i]);
            if (cc == 0) continue;
            for (int j = i; j > 0 && Ccc(buf[j - 1]) > cc; j--) (buf[j - 1], buf[j]) = (buf[j], buf[j - 1]);
        }
        // 3. canonical composition
        if (buf.Count > 0)
        {
            int starterPos = 0, starter = buf[0], lastClass = Ccc(starter) == 0 ? 0 : 256, outPos = 1;
            for (int i = 1; i < buf.Count; i++)
            {
                int ch = buf[i], cc = Ccc(ch);
                int composite = Compose(starter, ch);
                if (composite >= 0 && (lastClass < cc || lastClass == 0))
                {
                    buf[starterPos] = composite;
                    starter = composite;
                    continue;
                }
                if (cc == 0) { starterPos = outPos; starter = ch; }
                lastClass = cc;
                buf[outPos++] = ch;
            }
            buf.RemoveRange(outPos, buf.Count - outPos);
        }
        var sb = new System.Text.StringBuilder(buf.Count + 4);
        foreach (int cp in buf)
        {
            if (cp < 0x10000) sb.Append((char)cp); // a lone surrogate passes through as itself
            else { sb.Append((char)(0xD7C0 + (cp >> 10))); sb.Append((char)(0xDC00 | (cp & 0x3FF))); }
        }
        return sb.ToString();
    }

    private static int Compose(int a, int b)
    {
        if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
            return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
        if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
            return a + (b - TBase);
        return s_compose.TryGetValue(((long)a << 32) | (uint)b, out int c) ? c : -1;
    }
}
