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
    public static TokenizerData Build(int merges = 64) =>
        BpeLearner.WithR1Specials(BpeLearner.Learn(Corpus(), PreTokenizer.ForName(Pre), merges, minCount: 2), Pre);

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
        tok.Encode(R1ChatTemplate.Render([ChatMessage.User(prompt)], tok.BosText, addGenerationPrompt: true));
}
