// Learns byte-level BPE merges from texts, deterministically: the texts are split by a pre-tokenizer, and the most
// frequent adjacent pair is merged until enough merges are found (ties go to the pair whose "left right" text sorts
// first, ordinally). The small vocabularies of synthetic and task-trained models are built with it.
namespace R1Sharp.Tokenization;

public static class BpeLearner
{
    /// <summary>A byte-level vocabulary (the 256 byte tokens in GPT-2 order, then one token per merge) and its merges.</summary>
    public sealed record Result(List<string> Tokens, List<string> Merges);

    /// <summary>
    /// Up to <paramref name="merges"/> merges from <paramref name="texts"/> split by <paramref name="pre"/>; a pair
    /// is merged only when seen at least <paramref name="minCount"/> times.
    /// </summary>
    public static Result Learn(IEnumerable<string> texts, PreTokenizer pre, int merges, int minCount = 1)
    {
        var tokens = new List<string>(256 + merges);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (byte b in ByteLevel.VocabOrder) Add(ByteLevel.ByteToChar[b].ToString());

        // words (byte-level pre-tokens) with their counts, in order of first appearance
        var wordIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var words = new List<List<int>>();
        var counts = new List<long>();
        var pieces = new List<(int Start, int Length)>();
        foreach (string text in texts)
        {
            pieces.Clear();
            pre.Split(text, pieces);
            foreach (var (start, length) in pieces)
            {
                string w = ByteLevel.Encode(text.Substring(start, length));
                if (wordIndex.TryGetValue(w, out int wi)) { counts[wi]++; continue; }
                wordIndex[w] = words.Count;
                words.Add(w.Select(ch => ids[ch.ToString()]).ToList());
                counts.Add(1);
            }
        }

        var mergeList = new List<string>(merges);
        var pairCounts = new Dictionary<(int, int), long>();
        while (mergeList.Count < merges)
        {
            pairCounts.Clear();
            for (int w = 0; w < words.Count; w++)
                for (int i = 0; i + 1 < words[w].Count; i++)
                {
                    var p = (words[w][i], words[w][i + 1]);
                    pairCounts[p] = pairCounts.GetValueOrDefault(p) + counts[w];
                }
            (int L, int R) best = (-1, -1);
            long bestCount = 0;
            foreach (var (p, c) in pairCounts)
                if (c >= minCount && (c > bestCount || (c == bestCount && Compare(p, best) < 0))) { best = p; bestCount = c; }
            if (best.L < 0) break;
            mergeList.Add(tokens[best.L] + " " + tokens[best.R]);
            int merged = Add(tokens[best.L] + tokens[best.R]);
            foreach (var word in words)
                for (int i = 0; i + 1 < word.Count; i++)
                    if (word[i] == best.L && word[i + 1] == best.R) { word[i] = merged; word.RemoveAt(i + 1); }
        }
        return new Result(tokens, mergeList);

        int Add(string t)
        {
            if (!ids.TryAdd(t, tokens.Count)) return ids[t];
            tokens.Add(t);
            return tokens.Count - 1;
        }

        // "left right" order; byte-level token text has no character below '!', so comparing left then right is the same
        int Compare((int L, int R) a, (int L, int R) b)
        {
            int c = string.CompareOrdinal(tokens[a.L], tokens[b.L]);
            return c != 0 ? c : string.CompareOrdinal(tokens[a.R], tokens[b.R]);
        }
    }

    /// <summary>The vocabulary of a fixed list of merges ("left right" in byte-level text), as Learn returns it.</summary>
    public static Result FromMerges(IEnumerable<string> merges)
    {
        var tokens = new List<string>();
        foreach (byte b in ByteLevel.VocabOrder) tokens.Add(ByteLevel.ByteToChar[b].ToString());
        var list = merges.ToList();
        foreach (string m in list)
        {
            int space = m.IndexOf(' ');
            if (space <= 0 || space == m.Length - 1) throw new ArgumentException($"merge '{m}' is not 'left right'");
            string merged = m.Remove(space, 1);
            if (!tokens.Contains(merged)) tokens.Add(merged);
        }
        return new Result(tokens, list);
    }

    /// <summary>
    /// The learned vocabulary followed by the R1 special tokens (eos first, as in R1-Distill-Qwen), with the R1-Distill
    /// chat template: what llama.cpp loads like a real R1-Distill-Qwen vocabulary.
    /// </summary>
    public static TokenizerData WithR1Specials(Result learned, string pre)
    {
        var tokens = new List<string>(learned.Tokens);
        int firstSpecial = tokens.Count;
        var types = Enumerable.Repeat(TokenType.Normal, firstSpecial).ToList();
        foreach (var (text, type) in R1Vocab.SpecialTokens) { tokens.Add(text); types.Add(type); }
        return new TokenizerData("gpt2", pre, [.. tokens], [.. types], [.. learned.Merges],
            BosId: firstSpecial + 3, EosId: firstSpecial, PadId: firstSpecial, AddBos: true,
            ChatTemplate: R1Vocab.DistillQwenChatTemplate);
    }
}
