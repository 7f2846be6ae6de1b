// The seed corpus of every target, written by code so it can be regenerated (`R1Sharp.Fuzz --seeds fuzz/corpus`):
// small valid inputs that reach deep into each surface (AFL mutates from them), in the byte layouts FuzzTargets reads.
using System.Text;
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;
using R1Sharp.Tokenization;

namespace R1Sharp.Fuzz;

public static class Seeds
{
    public static void Write(string root)
    {
        Gguf(Dir(root, "gguf"));
        GgufVocab(Dir(root, "gguf-vocab"));
        Safetensors(Dir(root, "safetensors"));
        Texts(Dir(root, "tokenizer"), TokenizerSeeds());
        Texts(Dir(root, "chat-template"), ChatSeeds());
        Texts(Dir(root, "reasoning"), ReasoningSeeds());
        Texts(Dir(root, "request"), RequestSeeds());
        Texts(Dir(root, "gbnf"), GbnfSeeds().Select(s => Encoding.UTF8.GetBytes(s)));
        Texts(Dir(root, "json-schema"), SchemaSeeds().Select(s => Encoding.UTF8.GetBytes(s)));
    }

    private static string Dir(string root, string target)
    {
        string d = Path.Combine(root, target);
        Directory.CreateDirectory(d);
        return d;
    }

    private static void Texts(string dir, IEnumerable<byte[]> seeds)
    {
        int i = 0;
        foreach (var s in seeds) File.WriteAllBytes(Path.Combine(dir, $"seed-{i++:D2}"), s);
    }

    private static byte[] Mode(int mode, string text) => [(byte)mode, .. Encoding.UTF8.GetBytes(text)];

    // the smallest models each architecture loads: a few KB of weights beside the tiny vocabulary
    private static void Gguf(string dir)
    {
        var deepseekMicro = new SynthSpec
        {
            Architecture = "deepseek2", Name = "micro", Dim = 16, Layers = 2, Heads = 2, KvHeads = 1, FfnDim = 16, ContextLength = 64,
            Mla = new() { QLoraRank = 8, KvLoraRank = 8, NopeDim = 4, RopeDim = 4, VDim = 4 },
            Moe = new()
            {
                Experts = 4, ExpertsUsed = 2, SharedExperts = 1, ExpertFfnDim = 8, LeadingDenseLayers = 1,
                Gating = ExpertGating.Sigmoid, NormalizeWeights = true, WeightsScale = 2.5f, Groups = 2, GroupsUsed = 1,
            },
            Yarn = new() { Factor = 4, OriginalContext = 16, LogMultiplier = 0.1f, BetaFast = 32, BetaSlow = 1 },
        };
        (SynthSpec Spec, GgmlType Type)[] models =
        [
            (new SynthSpec { Architecture = "qwen2", Name = "micro", Dim = 8, Layers = 1, Heads = 2, KvHeads = 1, FfnDim = 16, ContextLength = 64 }, GgmlType.F16),
            (new SynthSpec { Architecture = "llama", Name = "micro", Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, FfnDim = 32, ContextLength = 64, TiedOutput = true }, GgmlType.Q8_0),
            (deepseekMicro, GgmlType.F16),
        ];
        foreach (var (spec, type) in models) Synthesizer.Write(spec, type, 1, Path.Combine(dir, $"seed-{spec.Architecture}.gguf"));
    }

    private static void GgufVocab(string dir)
    {
        foreach (string pre in new[] { "deepseek-r1-qwen", "llama-bpe", "deepseek-v3" })
        {
            var w = new GgufWriter();
            w.SetMetadata("general.architecture", GgufValue.Of("qwen2"));
            foreach (var kv in TinyVocab.Build(pre).ToGgufMetadata()) w.SetMetadata(kv.Key, kv.Value);
            w.Write(Path.Combine(dir, $"seed-{pre}.gguf"));
        }
    }

    private static void Safetensors(string dir)
    {
        (string, SafetensorsDType, long[])[][] files =
        [
            [("model.embed_tokens.weight", SafetensorsDType.BF16, [4, 2]), ("model.norm.weight", SafetensorsDType.F32, [2])],
            [("a", SafetensorsDType.F16, [1]), ("b", SafetensorsDType.F8_E4M3, [2, 2, 1]), ("c", SafetensorsDType.I64, [0])],
        ];
        for (int i = 0; i < files.Length; i++)
        {
            var header = SafetensorsHeader.Build(files[i], i == 0 ? new Dictionary<string, string> { ["format"] = "pt" } : null);
            long data = files[i].Sum(t => t.Item3.Aggregate(1L, (a, b) => a * b) * SafetensorsHeader.ElementBytes(t.Item2));
            File.WriteAllBytes(Path.Combine(dir, $"seed-{i}.safetensors"), [.. header, .. new byte[data]]);
        }
    }

    private static IEnumerable<byte[]> TokenizerSeeds()
    {
        string[] texts =
        [
            "What is 17+25? Please reason step by step.",
            "<｜User｜>hi<｜Assistant｜><think>\n17+25 = 42\n</think>\n\n42<｜end▁of▁sentence｜>",
            "I'm sure you've   seen\t\tit's 1234567 apples!!\r\n\r\n",
            "東京タワー 한국어 🙂👍🏽 e\u0301 ﬁ Ω",
            "    def f(x):\n        return x**2  # ok\n",
        ];
        for (int i = 0; i < texts.Length; i++) yield return Mode(i % 3 | (i % 2 == 0 ? 4 : 0), texts[i]);
        // UTF-16 with a lone surrogate and a split pair
        yield return [8 | 1, .. Encoding.Unicode.GetBytes("a\uD83D b \uDE00c"), 0, 0];
    }

    private static IEnumerable<byte[]> ChatSeeds()
    {
        const string tool = "\u0003{\"type\":\"function\",\"function\":{\"name\":\"add\",\"description\":\"Adds\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"}},\"required\":[\"a\"]}}}";
        yield return Mode(4 | 16, "\u0001What is 17+25?");
        yield return Mode(1 | 16, "\u0000You are terse.\0\u0001Hi\0\u0002<think>\nhm\n</think>\n\nHello\0\u0001And 2+2?");
        yield return Mode(2 | 8 | 16, $"\u0001Add 1 and 2{"\0"}{tool}\0\u0002\u0001add\u0002{{\"a\":1}}\0\u0003 3");
        yield return Mode(4 | 8, $"\u0001Use the tool\0{tool}\0\u0002call\u0001add\u0002{{}}\u0001add\u0002{{\"a\":2}}\0\u00033\0\u0001thanks");
    }

    private static IEnumerable<byte[]> ReasoningSeeds()
    {
        const string r1Call = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\": 1, \"b\": 2}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>mul\n```json\n{\"a\": 3}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        yield return [1, 7, .. Encoding.UTF8.GetBytes("17+25 c0 =\n1+2 c1 =2\n+ c0 =42\n</think>\n\n42")];
        yield return [0, 3, .. Encoding.UTF8.GetBytes("<think>\nfirst\n</think>\n\nThe answer is 42.")];
        yield return [1 | 2 | 8, 5, .. Encoding.UTF8.GetBytes("need a tool\n</think>\n\nCalling." + r1Call)];
        yield return [2 | 8, 9, .. Encoding.UTF8.GetBytes("<｜tool▁call▁begin｜>add<｜tool▁sep｜>{\"a\":1}<｜tool▁call▁end｜>")];
        yield return [4 | 8, 11, .. Encoding.UTF8.GetBytes("Sure.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"mul\", \"arguments\": {}}\n</tool_call>")];
        yield return [6, 13, .. Encoding.UTF8.GetBytes("{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": [2, {\"c\": \"}\"}]}}")];
    }

    private static IEnumerable<byte[]> RequestSeeds()
    {
        string[] chat =
        [
            """{"messages":[{"role":"user","content":"What is 17+25?"}],"max_tokens":64,"temperature":0}""",
            """{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]},{"role":"assistant","content":"<think>x</think>Hello","reasoning_content":"x"},{"role":"user","content":"2+2?"}],"n":2,"stream":true,"stream_options":{"include_usage":true},"stop":["\n","="],"seed":7,"top_p":0.9,"top_k":20,"min_p":0.05,"presence_penalty":0.5,"frequency_penalty":-0.5,"repetition_penalty":1.1}""",
            """{"messages":[{"role":"user","content":"add 1 2"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"add","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"call_1","content":"3"}],"tools":[{"type":"function","function":{"name":"add","description":"Adds","parameters":{"type":"object","properties":{"a":{"type":"number"}}}}}],"tool_choice":"auto","parallel_tool_calls":false}""",
            """{"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":{"enable_thinking":false},"reasoning_budget":16,"max_completion_tokens":8,"user":"u","metadata":{"k":"v"},"logprobs":false,"response_format":{"type":"text"}}""",
        ];
        string[] completions =
        [
            """{"prompt":"17+25 c0 =","max_tokens":16,"temperature":0,"ignore_eos":true}""",
            """{"prompt":[[1,2,3],[4]],"n":2,"stream":true,"echo":false,"best_of":1,"suffix":"","logprobs":0}""",
            """{"prompt":["a","b"],"stop":"\n","seed":-1}""",
        ];
        foreach (var c in chat) yield return Mode(1, c);
        foreach (var c in completions) yield return Mode(0, c);
    }

    private static IEnumerable<string> GbnfSeeds() =>
    [
        "root ::= answer\nanswer ::= \"The answer is \" [0-9]+ \".\"\n",
        "root ::= object\nvalue ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\nobject ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\narray ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\nstring ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\" ws\nnumber ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)? ws\nws ::= ([ \\t\\n] ws)?\n",
        "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\nterm ::= [0-9]+ | \"(\" expr \")\"\n",
        "root ::= \"yes\" | \"no\" | [a-c]{2,3} \"!\"?\n",
    ];

    private static IEnumerable<string> SchemaSeeds() =>
    [
        """{"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name"],"additionalProperties":false}""",
        """{"type":"array","items":{"enum":["a","b",1,null]},"minItems":1,"maxItems":3}""",
        """{"$defs":{"node":{"type":"object","properties":{"v":{"type":"number"},"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}""",
        """{"anyOf":[{"type":"string","pattern":"^[a-z]+[0-9]{2}$"},{"type":"string","format":"date"},{"const":42}]}""",
        """{"type":"object","properties":{"x":{"oneOf":[{"type":"boolean"},{"type":"array","prefixItems":[{"type":"integer"}]}]}},"allOf":[{"required":["x"]}]}""",
    ];
}
