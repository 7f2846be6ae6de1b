// The tokenizer.* metadata of a converted model, built from tokenizer.json, tokenizer_config.json and config.json
// as llama.cpp's convert_hf_to_gguf.py builds it: the vocabulary padded to config.json's vocab_size with [PADn]
// tokens, added tokens typed control or user-defined, special token ids looked up among the added tokens (then in
// config.json), add_bos/add_eos from the post-processor and the config, and tokenizer.ggml.pre chosen by hashing the
// tokens of a fixed probe text, so each known tokenizer gets the name llama.cpp gives it.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using R1Sharp.Formats;
using R1Sharp.Tokenization;

namespace R1Sharp.Conversion;

public sealed class HfVocab
{
    /// <summary>convert_hf_to_gguf.py's probe text: its token ids, hashed, identify the pre-tokenizer.</summary>
    internal const string ProbeText = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200D🌫\uFE0F (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL";

    /// <summary>SHA-256 of str(token ids of <see cref="ProbeText"/>) → tokenizer.ggml.pre, for the pre-tokenizers
    /// this engine implements (the hashes of the tokenizers they were published with: Qwen1.5/Qwen3, Llama 3,
    /// DeepSeek-V3, DeepSeek-R1-Distill-Qwen).</summary>
    internal static readonly IReadOnlyDictionary<string, string> KnownHashes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea"] = "qwen2",
        ["d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c"] = "qwen2",
        ["0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5"] = "llama-bpe",
        ["877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5"] = "deepseek-v3",
        ["b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5"] = "deepseek-r1-qwen",
    };

    private static readonly string[] s_specialTypes = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];

    private HfVocab() { }

    /// <summary>The keys in the order the reference converter writes them.</summary>
    public List<KeyValuePair<string, GgufValue>> Metadata { get; } = [];

    /// <summary>The vocabulary as the engine's tokenizer reads it.</summary>
    public required TokenizerData Data { get; init; }

    /// <summary>The SHA-256 of the probe text's token ids.</summary>
    public required string ProbeHash { get; init; }

    /// <summary>Set when the probe hash is not one llama.cpp knows and the name was taken from the regexes instead.</summary>
    public string? Warning { get; init; }

    /// <param name="dir">The checkpoint folder (tokenizer.json, tokenizer_config.json, chat_template.jinja).</param>
    /// <param name="config">config.json.</param>
    /// <param name="addSpacePrefix">llama: tokenizer_config's add_prefix_space becomes tokenizer.ggml.add_space_prefix.</param>
    public static HfVocab Load(string dir, JsonElement config, bool addSpacePrefix)
    {
        string tokPath = Path.Combine(dir, "tokenizer.json"), cfgPath = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(tokPath)) throw new CheckpointException($"{tokPath}: missing (convert needs the Hugging Face tokenizer)");
        TokenizerData hf;
        try
        {
            hf = TokenizerData.FromHuggingFace(tokPath, File.Exists(cfgPath) ? cfgPath : null);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new CheckpointException($"{tokPath}: {e.Message.Split('\n')[0]}");
        }
        using var tokDoc = HfCheckpoint.ReadJson(tokPath, required: true)!;
        using var cfgDoc = HfCheckpoint.ReadJson(cfgPath, required: false);
        JsonElement tj = tokDoc.RootElement;
        JsonElement? tc = cfgDoc?.RootElement;

        // Vocabulary: config.json's vocab_size rows (the embedding may be padded past the tokenizer), holes as [PADn].
        int n = hf.Tokens.Length;
        if (config.TryGetProperty("vocab_size", out var vs) && vs.ValueKind == JsonValueKind.Number)
        {
            int v = vs.GetInt32();
            if (v < n) throw new CheckpointException($"{Path.Combine(dir, "config.json")}: vocab_size {v} is smaller than the tokenizer's {n} tokens");
            n = v;
        }
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (i >= hf.Tokens.Length || hf.TokenTypes[i] == TokenType.Unused) { tokens[i] = $"[PAD{i}]"; types[i] = TokenType.Unused; continue; }
            tokens[i] = hf.Tokens[i];
            types[i] = hf.TokenTypes[i];
            // user-defined spaces are stored pre-normalized, as the reference converter does
            if (types[i] == TokenType.UserDefined) tokens[i] = tokens[i].Replace('\u2581', ' ');
        }
        string[] merges = ReadMerges(tj, tokPath);

        // tokenizer.ggml.pre: hash the probe text's ids (with the special tokens the Hugging Face tokenizer adds).
        string detected = hf.Pre;
        var probeTok = new BpeTokenizer(hf with { Tokens = tokens, TokenTypes = types });
        var ids = new List<int>();
        ids.AddRange(ProbeSpecials(tj, tc, probeTok, leading: true));
        probeTok.EncodeTo(ProbeText, ids);
        ids.AddRange(ProbeSpecials(tj, tc, probeTok, leading: false));
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("[" + string.Join(", ", ids) + "]")));
        string? warning = null;
        if (!KnownHashes.TryGetValue(hash, out string? pre))
        {
            pre = detected;
            warning = $"the tokenizer's probe hash {hash} is not one llama.cpp knows; tokenizer.ggml.pre = '{pre}' from its regexes";
        }

        // Special tokens: tokenizer_config's *_token looked up among added_tokens, then config.json's *_token_id;
        // add_* flags from a TemplateProcessing post-processor, overridden by tokenizer_config's add_*_token.
        var specialIds = new List<(string Type, int Id)>();
        var addFlags = new List<(string Type, bool Value)>();
        var types2 = s_specialTypes.ToList();
        string? bosText = ConfigTokenText(tc, "bos_token"), eosText = ConfigTokenText(tc, "eos_token");
        if (tj.TryGetProperty("post_processor", out var pp) && pp.ValueKind == JsonValueKind.Object)
        {
            IEnumerable<JsonElement> procs = pp.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array ? list.EnumerateArray() : [pp];
            foreach (var p in procs)
            {
                if (!p.TryGetProperty("type", out var pt) || pt.GetString() != "TemplateProcessing") continue;
                if (!p.TryGetProperty("single", out var single) || single.GetArrayLength() <= 1) continue;
                if (SpecialTokenId(single[0]) is string first)
                {
                    if (tc is null) bosText = first;
                    else if (first != bosText && bosText is null) bosText = first;
                    SetFlag(addFlags, "bos", first == bosText);
                }
                if (SpecialTokenId(single[single.GetArrayLength() - 1]) is string last)
                {
                    if (tc is null) eosText = last;
                    else if (last != eosText)
                    {
                        types2.Add("eot");
                        eosText = last;
                    }
                    SetFlag(addFlags, "eos", last == eosText);
                }
                // the pair template "A [sep] B": a separator is added when the middle holds sep or eos
                if (p.TryGetProperty("pair", out var pairEl) && pairEl.GetArrayLength() > 0)
                {
                    var pair = pairEl.EnumerateArray().ToList();
                    string? head = SpecialTokenId(single[0]), tail = SpecialTokenId(single[single.GetArrayLength() - 1]);
                    int from = head is not null && SpecialTokenId(pair[0]) == head ? 1 : 0;
                    int to = tail is not null && SpecialTokenId(pair[^1]) == tail ? pair.Count - 1 : pair.Count;
                    var mid = pair.GetRange(from, Math.Max(0, to - from));
                    if (mid.Count > 2 && SequenceId(mid[0]) == "A" && SequenceId(mid[^1]) == "B")
                    {
                        var between = mid.GetRange(1, mid.Count - 2);
                        string? sepText = ConfigTokenText(tc, "sep_token");
                        bool IsSep(JsonElement e) => SpecialTokenId(e) is string s && (s == sepText || s == eosText);
                        bool addSep = (IsSep(between[0]) && tail is null) || (between.Count == 2 && IsSep(between[1]));
                        SetFlag(addFlags, "sep", addSep);
                    }
                }
            }
        }
        var added = new List<(string Content, int Id)>();
        if (tj.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
            foreach (var a in at.EnumerateArray()) added.Add((a.GetProperty("content").GetString()!, a.GetProperty("id").GetInt32()));
        string? chatTemplate = null;
        if (tc is JsonElement c)
        {
            foreach (string typ in types2)
            {
                if (c.TryGetProperty($"add_{typ}_token", out var af) && af.ValueKind is JsonValueKind.True or JsonValueKind.False)
                    SetFlag(addFlags, typ, af.GetBoolean());
                string? text = typ switch { "bos" => bosText, "eos" => eosText, _ => ConfigTokenText(c, $"{typ}_token") };
                if (typ == "eot" && eosText is not null) text = ConfigTokenText(c, "eos_token");
                if (text is null) continue;
                int idx = added.FindIndex(x => x.Content == text);
                if (idx >= 0) SetId(specialIds, typ, added[idx].Id);
            }
            if (c.TryGetProperty("chat_template", out var ct) && ct.ValueKind == JsonValueKind.String) chatTemplate = ct.GetString();
            else if (ct.ValueKind == JsonValueKind.Array)
                foreach (var e in ct.EnumerateArray())
                    if (e.GetProperty("name").GetString() == "default") chatTemplate = e.GetProperty("template").GetString();
        }
        string jinja = Path.Combine(dir, "chat_template.jinja");
        if (chatTemplate is null && tc is not null && File.Exists(jinja)) chatTemplate = File.ReadAllText(jinja);
        foreach (string typ in types2)
            if (config.TryGetProperty($"{typ}_token_id", out var idv) && idv.ValueKind == JsonValueKind.Number && idv.TryGetInt32(out int id) && id >= 0)
                SetId(specialIds, typ, id);

        int? Get(string typ) => specialIds.FindIndex(x => x.Type == typ) is int i and >= 0 ? specialIds[i].Id : null;
        foreach (var (typ, id) in specialIds)
            if (id >= n) throw new CheckpointException($"{tokPath}: the {typ} token id {id} is outside the vocabulary ({n} tokens)");
        bool addBos = addFlags.FindIndex(x => x.Type == "bos") is int bi and >= 0 && addFlags[bi].Value;
        var data = new TokenizerData("gpt2", pre, tokens, types, merges, Get("bos"), Get("eos"), Get("pad"), addBos, chatTemplate)
        {
            EotId = Get("eot"),
        };

        var vocab = new HfVocab { Data = data, ProbeHash = hash, Warning = warning };
        var md = vocab.Metadata;
        const string P = "tokenizer.ggml.";
        md.Add(new(P + "model", GgufValue.Of("gpt2")));
        md.Add(new(P + "pre", GgufValue.Of(pre)));
        md.Add(new(P + "tokens", GgufValue.Of(tokens)));
        md.Add(new(P + "token_type", GgufValue.Of(types)));
        if (addSpacePrefix && tc is JsonElement c2 && c2.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind is JsonValueKind.True or JsonValueKind.False)
            md.Insert(0, new(P + "add_space_prefix", GgufValue.Of(aps.GetBoolean())));
        md.Add(new(P + "merges", GgufValue.Of(merges)));
        foreach (var (typ, id) in specialIds)
            md.Add(new(P + (typ == "pad" ? "padding" : typ == "sep" ? "seperator" : typ) + "_token_id", GgufValue.Of((uint)id)));
        foreach (var (typ, value) in addFlags)
            md.Add(new(P + $"add_{typ}_token", GgufValue.Of(value)));
        if (chatTemplate is not null) md.Add(new("tokenizer.chat_template", GgufValue.Of(chatTemplate)));
        return vocab;
    }

    private static void SetId(List<(string Type, int Id)> ids, string typ, int id)
    {
        if (ids.FindIndex(x => x.Type == typ) < 0) ids.Add((typ, id));
    }

    private static void SetFlag(List<(string Type, bool Value)> flags, string typ, bool value)
    {
        int i = flags.FindIndex(x => x.Type == typ);
        if (i >= 0) flags[i] = (typ, value);
        else flags.Add((typ, value));
    }

    private static string? SpecialTokenId(JsonElement item) =>
        item.TryGetProperty("SpecialToken", out var st) && st.TryGetProperty("id", out var id) ? id.GetString() : null;

    private static string? SequenceId(JsonElement item) =>
        item.TryGetProperty("Sequence", out var sq) && sq.TryGetProperty("id", out var id) ? id.GetString() : null;

    private static string? ConfigTokenText(JsonElement? cfg, string key)
    {
        if (cfg is not JsonElement c || !c.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
            _ => null,
        };
    }

    /// <summary>
    /// The special tokens the Hugging Face tokenizer adds around a text: LlamaTokenizerFast rebuilds its post-processor
    /// from tokenizer_config's add_bos_token (default true) and add_eos_token (default false); other classes use the
    /// tokenizer.json post-processor's TemplateProcessing.
    /// </summary>
    private static IEnumerable<int> ProbeSpecials(JsonElement tj, JsonElement? tc, BpeTokenizer tok, bool leading)
    {
        bool llamaClass = tc is JsonElement c && c.TryGetProperty("tokenizer_class", out var cls)
            && cls.GetString() is "LlamaTokenizerFast" or "LlamaTokenizer";
        if (llamaClass)
        {
            JsonElement cfg = tc!.Value;
            bool add = leading
                ? !cfg.TryGetProperty("add_bos_token", out var ab) || ab.ValueKind != JsonValueKind.False
                : cfg.TryGetProperty("add_eos_token", out var ae) && ae.ValueKind == JsonValueKind.True;
            if (add && ConfigTokenText(cfg, leading ? "bos_token" : "eos_token") is string t && tok.TokenToId(t) is int id) yield return id;
            yield break;
        }
        if (!tj.TryGetProperty("post_processor", out var pp) || pp.ValueKind != JsonValueKind.Object) yield break;
        IEnumerable<JsonElement> procs = pp.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array ? list.EnumerateArray().ToList() : [pp];
        foreach (var p in procs)
        {
            if (!p.TryGetProperty("type", out var t) || t.GetString() != "TemplateProcessing" || !p.TryGetProperty("single", out var single)) continue;
            var items = single.EnumerateArray().ToList();
            int seq = items.FindIndex(x => x.TryGetProperty("Sequence", out _));
            var side = leading ? items.Take(Math.Max(seq, 0)) : items.Skip(seq + 1);
            foreach (var item in side)
                if (SpecialTokenId(item) is string s && tok.TokenToId(s) is int id) yield return id;
        }
    }

    private static string[] ReadMerges(JsonElement tj, string path)
    {
        var merges = new List<string>();
        if (!tj.TryGetProperty("model", out var model) || !model.TryGetProperty("merges", out var ms) || ms.ValueKind != JsonValueKind.Array)
            throw new CheckpointException($"{path}: model.merges is missing");
        foreach (var m in ms.EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.String) merges.Add(m.GetString()!);
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
                // pairs may hold spaces: they are written as U+0120, as the reference converter does
                merges.Add(m[0].GetString()!.Replace(' ', '\u0120') + " " + m[1].GetString()!.Replace(' ', '\u0120'));
            else throw new CheckpointException($"{path}: a merge is neither a string nor a pair of strings");
        }
        return merges.ToArray();
    }
}
