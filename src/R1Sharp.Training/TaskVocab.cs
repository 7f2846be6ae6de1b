// The vocabulary of the task models: byte-level BPE (the 256 byte tokens, so any text encodes) with merges learned
// from the tasks' own prompts and solutions, then the R1 special tokens. The pre-tokenizer is R1-Distill-Qwen's
// (digits are split one by one, so every digit is its own token), and the chat template is the R1 one.
using R1Sharp.Chat;
using R1Sharp.Tokenization;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training;

public static class TaskVocab
{
    public const string Pre = "deepseek-r1-qwen";

    /// <summary>Builds the vocabulary deterministically: <paramref name="merges"/> merges from a fixed corpus of every task.</summary>
    public static TokenizerData Build(int merges = 64)
    {
        var splitter = PreTokenizer.ForName(Pre);
        var tokens = new List<string>();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (byte b in ByteLevel.VocabOrder) Add(ByteLevel.ByteToChar[b].ToString());

        var wordIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var words = new List<List<int>>();
        var counts = new List<long>();
        var pieces = new List<(int Start, int Length)>();
        foreach (string text in Corpus())
        {
            pieces.Clear();
            splitter.Split(text, pieces);
            foreach (var (start, length) in pieces)
            {
                string w = ByteLevel.Encode(text.Substring(start, length));
                if (wordIndex.TryGetValue(w, out int wi)) { counts[wi]++; continue; }
                wordIndex[w] = words.Count;
                words.Add(w.Select(ch => ids[ch.ToString()]).ToList());
                counts.Add(1);
            }
        }

        var mergeList = new List<string>();
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
            long bestCount = 1; // a merge must be seen at least twice
            foreach (var (p, c) in pairCounts)
                if (c > bestCount || (c == bestCount && best.L >= 0 && string.CompareOrdinal(tokens[p.Item1] + " " + tokens[p.Item2], tokens[best.L] + " " + tokens[best.R]) < 0))
                { best = p; bestCount = c; }
            if (best.L < 0) break;
            mergeList.Add(tokens[best.L] + " " + tokens[best.R]);
            int merged = Add(tokens[best.L] + tokens[best.R]);
            foreach (var word in words)
                for (int i = 0; i + 1 < word.Count; i++)
                    if (word[i] == best.L && word[i + 1] == best.R) { word[i] = merged; word.RemoveAt(i + 1); }
        }

        int firstSpecial = tokens.Count;
        var types = Enumerable.Repeat(TokenType.Normal, firstSpecial).ToList();
        foreach (var (text, type) in R1Vocab.SpecialTokens) { Add(text); types.Add(type); }
        return new TokenizerData("gpt2", Pre, [.. tokens], [.. types], [.. mergeList],
            BosId: firstSpecial + 3, EosId: firstSpecial, PadId: firstSpecial, AddBos: true,
            ChatTemplate: R1Vocab.DistillQwenChatTemplate);

        int Add(string t)
        {
            if (!ids.TryAdd(t, tokens.Count)) return ids[t];
            tokens.Add(t);
            return tokens.Count - 1;
        }
    }

    /// <summary>Prompts and solutions of the first problems of every task (a fixed seed range of their own).</summary>
    private static IEnumerable<string> Corpus()
    {
        foreach (string name in TaskRegistry.Names)
        {
            var task = TaskRegistry.Get(name);
            for (int i = 0; i < 400; i++)
            {
                var p = task.Generate((1UL << 62) + (ulong)i);
                yield return p.Prompt;
                yield return task.Solution(p).Replace(R1ChatTemplate.ThinkClose, "\n", StringComparison.Ordinal); // a special token, never merged
            }
        }
    }

    /// <summary>The prompt tokens for a problem: bos, the user turn, and the generation prompt "&lt;｜Assistant｜&gt;&lt;think&gt;\n".</summary>
    public static int[] EncodePrompt(BpeTokenizer tok, string prompt) =>
        tok.Encode(R1ChatTemplate.Render([ChatMessage.User(prompt)], tok.IdToToken(tok.BosId), addGenerationPrompt: true));
}
