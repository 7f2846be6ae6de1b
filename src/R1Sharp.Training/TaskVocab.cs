// The vocabulary of the task models: byte-level BPE (the 256 byte tokens, so any text encodes) with 64 merges, then
// the R1 special tokens. The pre-tokenizer is R1-Distill-Qwen's (digits are split one by one, so every digit is its
// own token), and the chat template is the R1 one. The merges were learned (BpeLearner) from the text of the first
// arithmetic and countdown tasks and are kept fixed, so every model trained here shares one vocabulary: a small model
// can draft tokens for a larger one (speculative decoding), and the models in models/ are such a pair.
using R1Sharp.Chat;
using R1Sharp.Tokenization;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training;

public static class TaskVocab
{
    public const string Pre = "deepseek-r1-qwen";

    /// <summary>The merges, in order, in byte-level text ("Ġ" is a space, "Ċ" a newline).</summary>
    private static readonly string[] Merges =
    [
        "Ġ =", "Ċ Ċ", "Ġ c", "U s", "b e", "be r", "m ber", "n u", "nu mber", "t h", "ĊĊ Ċ", "Ġ number", "Ġ= Ċ",
        "Ġ b", "/ .", "Us e", "Us i", "Usi n", "Usin g", "a c", "a k", "ac h", "ak e", "c e", "e ach", "i th",
        "m ake", "n ce", "o nce", "th e", "w ith", "Ġ *", "Ġ +", "Ġ -", "Ġ /.", "Ġ Use", "Ġ each", "Ġ make",
        "Ġ once", "Ġ the", "Ġ with", "Ġnumber s", "a t", ") +", "W h", "Wh at", "i s", "Ġ is", "C o", "Co m",
        "Com p", "Comp u", "Compu t", "Comput e", "C a", "Ca l", "Cal c", "Calc u", "Calcu l", "Calcul at",
        "Calculat e", ") -", ") *", ") /",
    ];

    /// <summary>The vocabulary: 256 byte tokens, one token per merge, the R1 special tokens (327 in all).</summary>
    public static TokenizerData Build() => BpeLearner.WithR1Specials(BpeLearner.FromMerges(Merges), Pre);

    /// <summary>The prompt tokens for a question alone: bos, the user turn, and the generation prompt "&lt;｜Assistant｜&gt;&lt;think&gt;\n".</summary>
    public static int[] EncodePrompt(BpeTokenizer tok, string prompt) =>
        tok.Encode(R1ChatTemplate.Render([ChatMessage.User(prompt)], tok.BosText, addGenerationPrompt: true));

    /// <summary>The prompt tokens for a problem: its earlier turns (as the R1 template renders them), the question, the generation prompt.</summary>
    public static int[] EncodePrompt(BpeTokenizer tok, Problem p) =>
        tok.Encode(R1ChatTemplate.Render([.. p.History, ChatMessage.User(p.Prompt)], tok.BosText, addGenerationPrompt: true));
}
