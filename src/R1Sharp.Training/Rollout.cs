// Sampling many completions at once with the inference engine: every (prompt, sample) pair gets its own KV-cache
// slot, prompts are prefilled in one batch, then each Forward decodes one token for every slot still running.
// GRPO's group sampling and eval's k samples per problem both run here.
using R1Sharp.Engine;
using R1Sharp.Sampling;

namespace R1Sharp.Training;

/// <summary>One sampled completion: its tokens (the end token included when it stopped), and its text (without it).</summary>
public sealed record Completion(int Prompt, int[] Tokens, string Text, bool Stopped);

public static class Rollout
{
    /// <summary>
    /// <paramref name="samples"/> completions of each prompt, at most <paramref name="maxNew"/> tokens each; sample j of
    /// prompt i is seeded by (seed, i, j). Results are ordered prompt by prompt.
    /// </summary>
    public static List<Completion> Generate(LoadedModel lm, IReadOnlyList<int[]> prompts, int samples, SamplingParams sp, int maxNew, ulong seed)
    {
        int slots = prompts.Count * samples;
        int capacity = prompts.Max(p => p.Length) + maxNew;
        using var cache = lm.Model.CreateCache(slots, capacity);
        var samplers = new Sampler[slots];
        var outputs = new List<int>[slots];
        var histories = new List<int>[slots];
        var done = new bool[slots];
        var stopped = new bool[slots];
        var batch = new Batch(Math.Max(16, prompts.Sum(p => p.Length) * samples));
        for (int s = 0; s < slots; s++)
        {
            var p = prompts[s / samples];
            samplers[s] = new Sampler(sp with { Seed = Mix(seed, (ulong)(s / samples), (ulong)(s % samples)) });
            outputs[s] = new List<int>();
            histories[s] = new List<int>(p);
            batch.AddSequence(p, 0, s);
        }
        int vocab = lm.Config.VocabSize;
        var logits = new float[slots * vocab];
        var rowOf = new int[slots];
        for (int s = 0; s < slots; s++) rowOf[s] = s;
        var lengths = prompts.Select(p => p.Length).ToArray();

        for (int step = 0; ; step++)
        {
            lm.Model.Forward(batch, cache, logits);
            batch.Clear();
            int row = 0;
            for (int s = 0; s < slots; s++)
            {
                if (done[s]) continue;
                int r = rowOf[s];
                int next = samplers[s].Sample(logits.AsSpan(r * vocab, vocab), System.Runtime.InteropServices.CollectionsMarshal.AsSpan(histories[s]));
                outputs[s].Add(next);
                histories[s].Add(next);
                if (lm.IsEndOfGeneration(next)) { done[s] = true; stopped[s] = true; continue; }
                if (outputs[s].Count >= maxNew) { done[s] = true; continue; }
                batch.Add(next, lengths[s / samples] + outputs[s].Count - 1, s, logits: true);
                rowOf[s] = row++;
            }
            if (batch.Count == 0) break;
        }

        var result = new List<Completion>(slots);
        for (int s = 0; s < slots; s++)
        {
            var toks = outputs[s];
            int textLen = stopped[s] ? toks.Count - 1 : toks.Count;
            string text = lm.Tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(toks)[..textLen]);
            result.Add(new Completion(s / samples, toks.ToArray(), text, stopped[s]));
        }
        return result;
    }

    private static ulong Mix(ulong seed, ulong a, ulong b) => seed * 0x9E3779B97F4A7C15UL ^ (a + 1) * 0xBF58476D1CE4E5B9UL ^ (b + 1) * 0x94D049BB133111EBUL;
}
