// Questions the arithmetic model does not answer with a number: greetings, general knowledge, requests, and questions
// that hold numbers without being integer arithmetic (decimals, powers, roots, percentages, equations, facts). Built
// from templates and fillers, so the stream has many thousands of distinct questions; every one is checked not to
// parse as an arithmetic expression.
using System.Globalization;
using R1Sharp.Sampling;

namespace R1Sharp.Training.Tasks;

public static class OffDomainQuestions
{
    private static readonly string[] Fixed =
    [
        "Hello", "Hello!", "Hi", "hi there", "Hey", "Good morning!", "Hello, who are you?", "Who are you?", "What are you?",
        "What can you do?", "How are you?", "What is your name?", "Thanks!", "Thank you", "Bye", "Are you a robot?",
        "Can you help me?", "Tell me a joke.", "Tell me a story.", "Why is the sky blue?", "What is the meaning of life?",
        "What time is it?", "What is the weather like today?", "Do you like music?", "Who made you?", "What day is it today?",
        "Help", "?", "ok", "What should I eat for dinner?", "Is it going to rain tomorrow?", "Sing a song.",
        "What is love?", "How do computers work?", "Can you speak French?", "What is your favorite color?",
    ];

    private static readonly string[] Things =
    [
        "a black hole", "photosynthesis", "gravity", "the internet", "a volcano", "democracy", "an atom", "a rainbow",
        "machine learning", "the moon", "a prime number", "electricity", "DNA", "a cloud", "inflation", "jazz", "a tiger",
        "the ocean", "a computer", "friendship", "the sun", "a poem", "chess", "a language", "history", "music", "water",
    ];

    private static readonly string[] Places =
    [
        "France", "Japan", "Brazil", "Canada", "Kenya", "Norway", "Peru", "India", "Egypt", "Italy", "Mexico", "Chile",
        "Spain", "Germany", "Vietnam", "Ghana", "Australia", "Poland", "Turkey", "Argentina",
    ];

    private static readonly string[] Animals = ["spider", "dog", "cat", "bird", "ant", "horse", "octopus", "snake", "cow", "fish"];

    private static readonly string[] Templates =
    [
        "What is {thing}?", "What is {thing}", "Explain {thing}.", "Tell me about {thing}.", "Can you explain {thing} to me?",
        "Write a poem about {thing}.", "Describe {thing} in one sentence.", "Why does {thing} matter?", "Is {thing} dangerous?",
        "What is the capital of {place}?", "Where is {place}?", "What language is spoken in {place}?", "Tell me about {place}.",
        "What is the population of {place}?", "What is the weather in {place}?", "How big is {place}?",
        "How many legs does a {animal} have?", "What does a {animal} eat?", "How long does a {animal} live?",
        "Is a {animal} a mammal?", "Draw a {animal}.",
        "What is {n}.{m} + {k}?", "What is {n}.{m} times {k}?", "Compute {n}.{m}-{k}.", "What is {n}^{k}?", "What is {n} squared?",
        "What is the square root of {n}?", "What is {k}% of {n}?", "Solve x + {n} = {m}.", "Solve {k}x = {n}.",
        "Is {n} a prime number?", "What is {n} factorial?", "Count to {k}.", "What comes after {n}?", "Convert {n} km to miles.",
        "What year is it?", "In what year did World War {k} end?", "How old are you?", "What is log {n}?",
        "Round {n}.{m} to the nearest whole number.", "What is {n} in binary?", "What is half of {n}.{m}?", "Is {n} even?",
        "My phone number is {n}{m}, can you remember it?", "I have {k} apples. Is that a lot?", "Translate {n} into Spanish.",
    ];

    /// <summary>The question for the stream at this point.</summary>
    public static string Next(ref Xoshiro256 rng)
    {
        while (true)
        {
            string q = Draw(ref rng);
            if (Expression.Parse(q) == null) return q;
        }
    }

    private static string Draw(ref Xoshiro256 rng)
    {
        if (rng.NextDouble() < 0.3) return Fixed[(int)(rng.Next() % (ulong)Fixed.Length)];
        string t = Templates[(int)(rng.Next() % (ulong)Templates.Length)];
        return t.Replace("{thing}", Pick(ref rng, Things)).Replace("{place}", Pick(ref rng, Places)).Replace("{animal}", Pick(ref rng, Animals))
            .Replace("{n}", Num(ref rng, 4)).Replace("{m}", Num(ref rng, 2)).Replace("{k}", Num(ref rng, 1));
    }

    private static string Pick(ref Xoshiro256 rng, string[] list) => list[(int)(rng.Next() % (ulong)list.Length)];

    private static string Num(ref Xoshiro256 rng, int maxDigits)
    {
        int digits = 1 + (int)(rng.Next() % (ulong)maxDigits);
        long lo = digits == 1 ? 1 : (long)Math.Pow(10, digits - 1), hi = (long)Math.Pow(10, digits);
        return (lo + (long)(rng.Next() % (ulong)(hi - lo))).ToString(CultureInfo.InvariantCulture);
    }
}
