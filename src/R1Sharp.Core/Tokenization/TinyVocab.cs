// A small byte-level BPE vocabulary for tiny synthetic models (`synth --preset tiny`): the 256 byte tokens in
// GPT-2 order, merges learned deterministically from the English text below, then the R1 special tokens.
// llama.cpp loads it like a real R1-Distill-Qwen vocabulary (same token types, a newline token, a chat template).
namespace R1Sharp.Tokenization;

public static class TinyVocab
{
    /// <summary>How many merges are learned.</summary>
    public const int MergeCount = 400;

    /// <summary>The vocabulary: 256 byte tokens, the learned merges, then the R1 special tokens (eos first, as in R1-Distill-Qwen).</summary>
    public static TokenizerData Build(string pre = "deepseek-r1-qwen") =>
        BpeLearner.WithR1Specials(BpeLearner.Learn([TrainingText], PreTokenizer.ForName(pre), MergeCount), pre);

    private const string TrainingText = """
        The quick brown fox jumps over the lazy dog. The dog sleeps in the sun, and the fox runs into the forest.
        Once upon a time there was a little girl who lived in a village near the forest. Whenever she went out,
        the little girl wore a red riding cloak, so everyone in the village called her Little Red Riding Hood.
        One morning her mother said to her: "Take this basket of bread and butter to your grandmother, who is ill.
        Walk straight there and do not stop to talk to anyone on the way." The girl promised that she would.
        In the middle of the forest she met a wolf. "Where are you going?" asked the wolf. "I am going to see my
        grandmother," she answered. The wolf thought for a moment and then he ran ahead of her to the house.

        Let me think about this problem step by step. We are given a number and we need to find its square.
        First, I should check whether the number is positive. If it is, then the square is simply the number
        multiplied by itself. For example, the square of 12 is 144, and the square of 25 is 625. So the answer
        is 144. Wait, let me double check: 12 times 12 is 120 plus 24, which is 144. Yes, that is correct.
        Therefore, the final answer is \boxed{144}.

        Please reason step by step, and put your final answer within \boxed{}. What is the sum of the first ten
        positive integers? The sum of the integers from 1 to n is n(n+1)/2. For n = 10 this gives 10 * 11 / 2 = 55.
        Hmm, I need to be careful here. Let me verify by adding them one at a time: 1 + 2 = 3, 3 + 3 = 6, 6 + 4 = 10,
        10 + 5 = 15, 15 + 6 = 21, 21 + 7 = 28, 28 + 8 = 36, 36 + 9 = 45, and 45 + 10 = 55. So the answer is 55.

        A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The
        assistant first thinks about the reasoning process in the mind and then provides the user with the answer.
        The reasoning process and answer are enclosed within think and answer tags, respectively.

        In computer science, a tokenizer splits text into tokens. A byte pair encoding starts from single bytes and
        repeatedly merges the most frequent pair of adjacent symbols. The result is a vocabulary of common words
        and pieces of words, so that any text can be written with it, even text that was never seen in training.
        The model reads these tokens and predicts the next one. It learns what words mean from the way that
        they are used together, and it can then answer questions, write stories, and solve problems in mathematics.

        def add(a, b):
            return a + b

        for i in range(10):
            print(i, add(i, i))

        There are many things that people like to do in their free time. Some of them like to read books, others
        like to play games or to go for a walk in the park. My friend and I often go to the river on the weekend,
        where we sit in the shade of the trees and talk about everything that has happened during the week.
        It is important to think before you speak, and to listen when other people are speaking to you.
        When the weather is good, we take our bicycles and ride along the river until the sun goes down.
        """;
}
