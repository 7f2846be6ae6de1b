// The vocabulary of a byte-level BPE tokenizer as GGUF holds it (tokenizer.ggml.* keys), loadable from
// GGUF metadata or from a Hugging Face tokenizer.json + tokenizer_config.json, and writable back to GGUF.
using System.Text.Json;
using R1Sharp.Formats;

namespace R1Sharp.Tokenization;

/// <summary>llama.cpp's token types (tokenizer.ggml.token_type).</summary>
public static class TokenType
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;
}

/// <param name="Model">tokenizer.ggml.model; only "gpt2" (byte-level BPE) is supported.</param>
/// <param name="Pre">tokenizer.ggml.pre: the pre-tokenizer name (see <see cref="PreTokenizer.KnownNames"/>).</param>
/// <param name="Tokens">Token texts by id; normal tokens in byte-level form, control/user-defined tokens as raw text.</param>
/// <param name="TokenTypes">llama.cpp token types by id: 1 normal, 3 control, 4 user-defined, 5 unused, 6 byte.</param>
/// <param name="Merges">BPE merges by rank, each "left right".</param>
/// <param name="BosId">tokenizer.ggml.bos_token_id; optional in GGUF: without it no BOS is ever added.</param>
/// <param name="EosId">tokenizer.ggml.eos_token_id; optional in GGUF: without it generation ends on the other
/// end-of-generation tokens (<see cref="EndOfGenerationIds"/>).</param>
public sealed record TokenizerData(string Model, string Pre, string[] Tokens, int[] TokenTypes, string[] Merges,
    int? BosId, int? EosId, int? PadId, bool AddBos, string? ChatTemplate)
{
    private const string P = "tokenizer.ggml.";

    /// <summary>tokenizer.ggml.eot_token_id (end of turn), when the file names one.</summary>
    public int? EotId { get; init; }

    /// <summary>tokenizer.ggml.eom_token_id (end of message, Llama 3.1's tool turns), when the file names one.</summary>
    public int? EomId { get; init; }

    // The texts llama.cpp (llama-vocab.cpp) recognizes as ending generation whatever the metadata says: the union
    // of its end-of-turn candidates and its end-of-generation list, which is where DeepSeek's
    // <｜end▁of▁sentence｜> stands; <|EOT|>, R1-Distill-Qwen's end-of-turn token, joins them.
    private static readonly string[] s_endTexts =
        ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
         "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "<｜end▁of▁sentence｜>", "<|EOT|>"];

    /// <summary>
    /// The tokens that end generation: eos, eot and eom where the file names them, and every control or
    /// user-defined token (as a converter marks them) whose text is one of llama.cpp's end-of-turn and
    /// end-of-generation texts, so a file without eos_token_id still stops.
    /// </summary>
    public IReadOnlySet<int> EndOfGenerationIds()
    {
        var ids = new HashSet<int>();
        foreach (int? id in new[] { EosId, EotId, EomId }) if (id is int i) ids.Add(i);
        var wanted = new HashSet<string>(s_endTexts, StringComparer.Ordinal);
        for (int i = 0; i < Tokens.Length; i++)
            if (TokenTypes[i] is TokenType.Control or TokenType.UserDefined && wanted.Contains(Tokens[i])) ids.Add(i);
        return ids;
    }

    /// <summary>Reads the tokenizer.ggml.* keys (and tokenizer.chat_template) of a GGUF file's metadata.</summary>
    /// <exception cref="InvalidDataException">A key is missing or has the wrong type, or the model/pre-tokenizer is unknown.</exception>
    public static TokenizerData FromGgufMetadata(IReadOnlyDictionary<string, GgufValue> md)
    {
        string model = GetString(md, P + "model");
        if (model != "gpt2")
            throw new InvalidDataException($"{P}model = '{model}' is not supported; only 'gpt2' (byte-level BPE) is.");
        string pre = GetString(md, P + "pre");
        if (!PreTokenizer.IsKnown(pre))
            throw new InvalidDataException(
                $"{P}pre = '{pre}' names an unknown pre-tokenizer; known: {string.Join(", ", PreTokenizer.KnownNames)}.");
        string[] tokens = md.TryGetValue(P + "tokens", out var tv) && tv.Value is string[] ts
            ? ts : throw new InvalidDataException($"{P}tokens is missing or is not an array of strings.");
        int[] types;
        if (md.TryGetValue(P + "token_type", out var ttv))
        {
            types = ToIntArray(ttv, P + "token_type");
            if (types.Length != tokens.Length)
                throw new InvalidDataException($"{P}token_type has {types.Length} entries but {P}tokens has {tokens.Length}.");
        }
        else
        {
            types = new int[tokens.Length];
            Array.Fill(types, TokenType.Normal);
        }
        string[] merges = md.TryGetValue(P + "merges", out var mv) && mv.Value is string[] ms
            ? ms : throw new InvalidDataException($"{P}merges is missing or is not an array of strings.");
        int? bos = GetId(md, P + "bos_token_id", tokens.Length);
        int? eos = GetId(md, P + "eos_token_id", tokens.Length);
        int? pad = GetId(md, P + "padding_token_id", tokens.Length);
        bool addBos = md.TryGetValue(P + "add_bos_token", out var ab)
            ? ab.Value as bool? ?? throw new InvalidDataException($"{P}add_bos_token is not a bool.")
            : false;
        string? template = md.TryGetValue("tokenizer.chat_template", out var ct)
            ? ct.Value as string ?? throw new InvalidDataException("tokenizer.chat_template is not a string.")
            : null;
        return new TokenizerData(model, pre, tokens, types, merges, bos, eos, pad, addBos, template)
        {
            EotId = GetId(md, P + "eot_token_id", tokens.Length),
            EomId = GetId(md, P + "eom_token_id", tokens.Length),
        };
    }

    /// <summary>The tokenizer.ggml.* keys llama.cpp expects, in the order convert_hf_to_gguf.py writes them.</summary>
    public IEnumerable<KeyValuePair<string, GgufValue>> ToGgufMetadata()
    {
        yield return new(P + "model", GgufValue.Of(Model));
        yield return new(P + "pre", GgufValue.Of(Pre));
        yield return new(P + "tokens", GgufValue.Of(Tokens));
        yield return new(P + "token_type", GgufValue.Of(TokenTypes));
        yield return new(P + "merges", GgufValue.Of(Merges));
        if (BosId is int bos) yield return new(P + "bos_token_id", GgufValue.Of((uint)bos));
        if (EosId is int eos) yield return new(P + "eos_token_id", GgufValue.Of((uint)eos));
        if (EotId is int eot) yield return new(P + "eot_token_id", GgufValue.Of((uint)eot));
        if (EomId is int eom) yield return new(P + "eom_token_id", GgufValue.Of((uint)eom));
        if (PadId is int pad) yield return new(P + "padding_token_id", GgufValue.Of((uint)pad));
        yield return new(P + "add_bos_token", GgufValue.Of(AddBos));
        if (ChatTemplate is not null) yield return new("tokenizer.chat_template", GgufValue.Of(ChatTemplate));
    }

    private static string GetString(IReadOnlyDictionary<string, GgufValue> md, string key) =>
        !md.TryGetValue(key, out var v) ? throw new InvalidDataException($"{key} is missing.")
        : v.Value as string ?? throw new InvalidDataException($"{key} is not a string (it is {v.Type}).");

    private static int? GetId(IReadOnlyDictionary<string, GgufValue> md, string key, int vocabSize)
    {
        if (!md.TryGetValue(key, out var v)) return null;
        long id = v.Type != GgufValueType.Array && v.AsInt64() is long l ? l
            : throw new InvalidDataException($"{key} is not an integer (it is {v.Type}).");
        if (id < 0 || id >= vocabSize) throw new InvalidDataException($"{key} = {id} is outside the vocabulary (size {vocabSize}).");
        return (int)id;
    }

    private static int[] ToIntArray(GgufValue v, string key)
    {
        if (v.Value is int[] ints) return ints;
        if (v.Value is not Array a || v.ElementType is GgufValueType.String or GgufValueType.Array
            or GgufValueType.Float32 or GgufValueType.Float64)
            throw new InvalidDataException($"{key} is not an array of integers.");
        var r = new int[a.Length];
        for (int i = 0; i < r.Length; i++) r[i] = Convert.ToInt32(a.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
        return r;
    }

    /// <summary>
    /// Reads a Hugging Face tokenizer.json (a BPE model with a ByteLevel pre-tokenizer) and, when given, its
    /// tokenizer_config.json (bos/eos/pad tokens, add_bos_token, chat_template). Added tokens become control
    /// tokens (type 3) when special or when they look special (<c>&lt;|…|&gt;</c>, <c>&lt;｜…｜&gt;</c>), else
    /// user-defined (type 4), as llama.cpp's convert_hf_to_gguf.py does. <paramref name="pre"/> overrides the
    /// pre-tokenizer name, otherwise detected from the Split regexes.
    /// </summary>
    public static TokenizerData FromHuggingFace(string tokenizerJsonPath, string? tokenizerConfigJsonPath, string? pre = null)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJsonPath), new JsonDocumentOptions { MaxDepth = 256 });
        JsonElement root = doc.RootElement;
        JsonElement model = root.GetProperty("model");
        if (model.TryGetProperty("type", out var mt) && mt.GetString() != "BPE")
            throw new InvalidDataException($"{tokenizerJsonPath}: model.type '{mt.GetString()}' is not BPE.");
        pre ??= DetectPre(root, tokenizerJsonPath);

        var byId = new Dictionary<int, string>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = p.Name;
        var addedType = new Dictionary<int, int>();
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                int id = a.GetProperty("id").GetInt32();
                string content = a.GetProperty("content").GetString()!;
                bool special = a.TryGetProperty("special", out var sp) && sp.GetBoolean();
                byId[id] = content;
                addedType[id] = special || LooksSpecial(content) ? TokenType.Control : TokenType.UserDefined;
            }
        int n = byId.Count == 0 ? 0 : byId.Keys.Max() + 1;
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (!byId.TryGetValue(i, out var t)) { tokens[i] = $"[PAD{i}]"; types[i] = TokenType.Unused; continue; }
            tokens[i] = t;
            types[i] = addedType.TryGetValue(i, out int at) ? at : TokenType.Normal;
        }

        var merges = new List<string>();
        foreach (var m in model.GetProperty("merges").EnumerateArray())
            merges.Add(m.ValueKind == JsonValueKind.String ? m.GetString()!
                : m[0].GetString() + " " + m[1].GetString());

        var tokenToId = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = n - 1; i >= 0; i--) tokenToId[tokens[i]] = i;
        int? bos = null, eos = null, pad = null;
        bool addBos = false;
        string? template = null;
        if (tokenizerConfigJsonPath is not null)
        {
            using var cfg = JsonDocument.Parse(File.ReadAllBytes(tokenizerConfigJsonPath));
            JsonElement c = cfg.RootElement;
            bos = ConfigToken(c, "bos_token", tokenToId, tokenizerConfigJsonPath);
            eos = ConfigToken(c, "eos_token", tokenToId, tokenizerConfigJsonPath);
            pad = ConfigToken(c, "pad_token", tokenToId, tokenizerConfigJsonPath);
            if (c.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind is JsonValueKind.True or JsonValueKind.False)
                addBos = ab.GetBoolean();
            else if (PostProcessorAddsBos(root, tokenToId) is int postBos)
            {
                addBos = true;
                bos ??= postBos;
            }
            if (c.TryGetProperty("chat_template", out var ct))
            {
                if (ct.ValueKind == JsonValueKind.String) template = ct.GetString();
                else if (ct.ValueKind == JsonValueKind.Array)
                    foreach (var e in ct.EnumerateArray())
                        if (e.GetProperty("name").GetString() == "default") template = e.GetProperty("template").GetString();
            }
        }
        // Like convert_hf_to_gguf.py for Qwen2: with no bos token, <|endoftext|> (the pad token) stands in.
        bos ??= pad ?? eos;
        if (bos is null || eos is null)
            throw new InvalidDataException($"{tokenizerJsonPath}: no bos/eos token (give a tokenizer_config.json).");
        return new TokenizerData("gpt2", pre, tokens, types, merges.ToArray(), bos, eos, pad, addBos, template);
    }

    /// <summary>convert_hf_to_gguf.py's does_token_look_special.</summary>
    public static bool LooksSpecial(string t) =>
        t is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (t.StartsWith("<|", StringComparison.Ordinal) && t.EndsWith("|>", StringComparison.Ordinal))
        || (t.StartsWith("<｜", StringComparison.Ordinal) && t.EndsWith("｜>", StringComparison.Ordinal))
        || (t.StartsWith("<unused", StringComparison.Ordinal) && t.EndsWith('>'));

    private static int? ConfigToken(JsonElement cfg, string key, Dictionary<string, int> tokenToId, string path)
    {
        if (!cfg.TryGetProperty(key, out var v)) return null;
        string? text = v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object => v.GetProperty("content").GetString(),
            _ => null,
        };
        if (text is null) return null;
        return tokenToId.TryGetValue(text, out int id) ? id
            : throw new InvalidDataException($"{path}: {key} '{text}' is not in the vocabulary.");
    }

    // A TemplateProcessing post-processor whose single-sequence template starts with a special token adds bos.
    private static int? PostProcessorAddsBos(JsonElement root, Dictionary<string, int> tokenToId)
    {
        if (!root.TryGetProperty("post_processor", out var pp) || pp.ValueKind != JsonValueKind.Object) return null;
        IEnumerable<JsonElement> procs = pp.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray() : [pp];
        foreach (var p in procs)
            if (p.TryGetProperty("type", out var t) && t.GetString() == "TemplateProcessing"
                && p.TryGetProperty("single", out var single) && single.GetArrayLength() > 0
                && single[0].TryGetProperty("SpecialToken", out var st)
                && tokenToId.TryGetValue(st.GetProperty("id").GetString()!, out int id))
                return id;
        return null;
    }

    // The regexes of the Split pre-tokenizers, by the name llama.cpp gives that pre-tokenizer.
    internal const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    internal const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    internal static readonly string[] DeepSeekV3Regexes =
    [
        @"\p{N}{1,3}",
        "[一-龥぀-ゟ゠-ヿ]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ];

    private static string DetectPre(JsonElement root, string path)
    {
        var regexes = new List<string>();
        bool byteLevel = false;
        if (root.TryGetProperty("pre_tokenizer", out var pt) && pt.ValueKind == JsonValueKind.Object) Collect(pt);
        if (!byteLevel) throw new InvalidDataException($"{path}: the pre-tokenizer has no ByteLevel step; only byte-level BPE is supported.");
        if (regexes.SequenceEqual([Qwen2Regex])) return "qwen2";
        if (regexes.SequenceEqual([Llama3Regex])) return "llama-bpe";
        if (regexes.SequenceEqual(DeepSeekV3Regexes)) return "deepseek-v3";
        throw new InvalidDataException(
            $"{path}: unknown pre-tokenizer regexes [{string.Join(" ; ", regexes)}]; pass the pre-tokenizer name explicitly.");

        void Collect(JsonElement e)
        {
            string? type = e.TryGetProperty("type", out var t) ? t.GetString() : null;
            if (type == "Sequence" && e.TryGetProperty("pretokenizers", out var seq))
                foreach (var s in seq.EnumerateArray()) Collect(s);
            else if (type == "Split")
            {
                var pat = e.GetProperty("pattern");
                regexes.Add(pat.TryGetProperty("Regex", out var r) ? r.GetString()! : "literal:" + pat.GetProperty("String").GetString());
            }
            else if (type == "ByteLevel")
            {
                byteLevel = true;
                if (e.TryGetProperty("use_regex", out var ur) && ur.ValueKind == JsonValueKind.True)
                    regexes.Add("gpt2-byte-level-regex");
            }
            else throw new InvalidDataException($"{path}: unsupported pre-tokenizer type '{type}'.");
        }
    }
}
