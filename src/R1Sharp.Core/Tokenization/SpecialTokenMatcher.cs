// Finds control and user-defined tokens written in text: the leftmost match, the longest at that position,
// as tokenizers' AddedVocabulary (Aho-Corasick, LeftmostLongest) does.
using System.Buffers;

namespace R1Sharp.Tokenization;

internal sealed class SpecialTokenMatcher
{
    private readonly Dictionary<long, int> _edges = new();  // (node << 16 | char) -> child node
    private readonly List<int> _terminal = [-1];             // node -> token id ending there, or -1
    private readonly int[] _types;
    private readonly SearchValues<char> _firstChars;

    public SpecialTokenMatcher(string[] tokens, int[] types)
    {
        _types = types;
        var first = new HashSet<char>();
        for (int id = 0; id < tokens.Length; id++)
        {
            if (types[id] is not (TokenType.Control or TokenType.UserDefined) || tokens[id].Length == 0) continue;
            int node = 0;
            foreach (char c in tokens[id])
            {
                long key = ((long)node << 16) | c;
                if (!_edges.TryGetValue(key, out int child))
                {
                    child = _terminal.Count;
                    _terminal.Add(-1);
                    _edges[key] = child;
                }
                node = child;
            }
            if (_terminal[node] < 0) _terminal[node] = id; // the lowest id wins for duplicate texts
            first.Add(tokens[id][0]);
        }
        _firstChars = SearchValues.Create([.. first]);
    }

    /// <summary>The first special token at or after <paramref name="from"/>; control tokens only when <paramref name="includeControl"/>.</summary>
    public bool FindNext(ReadOnlySpan<char> text, int from, bool includeControl, out int start, out int length, out int id)
    {
        int i = from;
        while (i < text.Length)
        {
            int k = text[i..].IndexOfAny(_firstChars);
            if (k < 0) break;
            i += k;
            int node = 0, bestId = -1, bestLen = 0;
            for (int j = i; j < text.Length && _edges.TryGetValue(((long)node << 16) | text[j], out node); j++)
            {
                int t = _terminal[node];
                if (t >= 0 && (includeControl || _types[t] != TokenType.Control)) { bestId = t; bestLen = j - i + 1; }
            }
            if (bestId >= 0) { start = i; length = bestLen; id = bestId; return true; }
            i++;
        }
        start = length = id = 0;
        return false;
    }
}
