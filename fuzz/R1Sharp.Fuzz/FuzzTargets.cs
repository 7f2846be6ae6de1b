// One fuzz target per surface that reads outside input: each takes the fuzzer's bytes, catches only the error type
// its surface documents for bad input, and checks what must hold of any input it accepts. Anything else that
// escapes (another exception, a broken invariant: FuzzFinding) is a crash; so is running past the time limit.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using R1Sharp.Chat;
using R1Sharp.Formats;
using R1Sharp.Grammar;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Server;
using R1Sharp.Server.Protocol;
using R1Sharp.Tokenization;

namespace R1Sharp.Fuzz;

/// <summary>An input broke something that must hold of every input (not an exception the code threw).</summary>
public sealed class FuzzFinding(string message) : Exception(message);

public sealed record FuzzTarget(string Name, string Surface, Action<byte[]> Run);

public static class FuzzTargets
{
    public static readonly IReadOnlyList<FuzzTarget> All =
    [
        new("gguf", "GGUF reader (GgufFile), model info and model loading over the parsed file", Gguf),
        new("gguf-vocab", "tokenizer from GGUF metadata (TokenizerData.FromGgufMetadata, BpeTokenizer)", GgufVocab),
        new("safetensors", "safetensors header reader (SafetensorsHeader.Parse)", Safetensors),
        new("tokenizer", "byte-level BPE over text (three pre-tokenizers, special tokens, streaming decode)", Tokenizer),
        new("chat-template", "chat templates (R1, ChatML, Llama 3) with tools, and template detection", ChatTemplate),
        new("reasoning", "reasoning and tool-call parsers (AssistantOutput: ReasoningParser, ToolCallParser)", Reasoning),
        new("request", "request JSON binding (RequestFields check, deserialization, message/tool/sampling checks)", Request),
        new("gbnf", "GBNF grammar parser and compiler, token masks over a tiny vocabulary", Gbnf),
        new("json-schema", "JSON Schema to grammar compiler, token masks over a tiny vocabulary", JsonSchema),
    ];

    public static FuzzTarget Find(string name) => All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"no fuzz target '{name}'; the targets are {string.Join(", ", All.Select(t => t.Name))}");

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new FuzzFinding(what);
    }

    // ---- GGUF ----

    private static readonly Lazy<ComputePool> s_pool = new(() => new ComputePool(1));

    private static unsafe void Gguf(byte[] data)
    {
        GgufFile f;
        try { f = GgufFile.OpenMemory(data); }
        catch (GgufFormatException) { return; }
        using (f)
        {
            Check(f.DataOffset % f.Alignment == 0 && f.DataOffset <= f.FileSize, "the data section is misplaced");
            foreach (var (key, value) in f.Metadata)
            {
                _ = value.ToString();
                _ = value.AsDouble();
                Try(() => f.GetString(key));
                Try(() => f.GetInt(key));
                Try(() => f.GetFloat(key));
                Try(() => f.GetBool(key));
                Try(() => f.GetStringArray(key));
                Try(() => f.GetInt32Array(key));
                Try(() => f.GetFloat32Array(key));
            }
            long sum = 0;
            foreach (var t in f.Tensors)
            {
                Check(ReferenceEquals(t, f.GetTensor(t.Name)), "a tensor is not found by its name");
                Check(t.Offset >= 0 && f.DataOffset + t.Offset + t.ByteSize <= f.FileSize, $"tensor {t.Name} lies outside the file");
                var bytes = f.TensorBytes(t);
                if (bytes.Length > 0) sum += bytes[0] + bytes[^1];
            }
            GC.KeepAlive(sum);
            try { _ = ModelInfo.From(f); }
            catch (InvalidDataException) { }
            // the loader over the parsed file: a bad architecture, shape or type is a one-line error, never a crash
            try { ModelRegistry.Load(f, s_pool.Value).Dispose(); }
            catch (Exception e) when (e is InvalidDataException or GgufFormatException or NotSupportedException) { }
        }
    }

    private static void Try(Func<object?> read)
    {
        try { read(); }
        catch (GgufFormatException) { }
    }

    private static void GgufVocab(byte[] data)
    {
        GgufFile f;
        try { f = GgufFile.OpenMemory(data); }
        catch (GgufFormatException) { return; }
        using (f)
        {
            TokenizerData vocab;
            BpeTokenizer tok;
            try
            {
                vocab = TokenizerData.FromGgufMetadata(f.Metadata);
                tok = new BpeTokenizer(vocab);
            }
            catch (InvalidDataException) { return; }
            foreach (string text in s_probeTexts)
            {
                var ids = tok.Encode(text, addBos: tok.AddBos);
                Check(ids.All(id => (uint)id < (uint)tok.VocabSize), "an id outside the vocabulary");
                StreamingEqualsWhole(tok, ids);
            }
            var all = Enumerable.Range(0, tok.VocabSize).ToArray();
            _ = tok.Decode(all, skipControl: true);
            StreamingEqualsWhole(tok, all);
        }
    }

    private static readonly string[] s_probeTexts =
        ["What is 17+25?", "<｜User｜>hi<｜Assistant｜><think>\n</think>\n\n42", " \t\n  x", "é 東京 🙂 don't", ""];

    // ---- safetensors ----

    private static void Safetensors(byte[] data)
    {
        SafetensorsHeader h;
        try { h = SafetensorsHeader.Parse(data); }
        catch (SafetensorsFormatException) { return; }
        Check(h.DataOffset == SafetensorsHeader.LengthBytes + BinaryPrimitives.ReadInt64LittleEndian(data), "the data offset is not 8 + the header length");
        foreach (var t in h.Tensors)
        {
            Check(t.Begin >= 0 && t.Begin <= t.End && h.DataOffset + t.End <= data.Length, $"tensor {t.Name} lies outside the file");
            Check(t.ByteSize == t.ElementCount * SafetensorsHeader.ElementBytes(t.DType), $"tensor {t.Name}'s bytes do not match its shape");
            Check(ReferenceEquals(h.ByName[t.Name], t), "a tensor is not found by its name");
        }
    }

    // ---- tokenizer over text ----

    private static readonly Lazy<BpeTokenizer[]> s_tokenizers = new(() =>
        new[] { "deepseek-r1-qwen", "llama-bpe", "deepseek-v3" }.Select(pre => new BpeTokenizer(TinyVocab.Build(pre))).ToArray());

    /// <summary>Byte 0: the pre-tokenizer (bits 0-1), special tokens parsed (bit 2), the text as UTF-16 code units (bit 3, lone surrogates included) or UTF-8.</summary>
    private static void Tokenizer(byte[] data)
    {
        if (data.Length == 0) return;
        var tok = s_tokenizers.Value[(data[0] & 3) % 3];
        bool special = (data[0] & 4) != 0;
        string text = (data[0] & 8) != 0
            ? new string(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, char>(data.AsSpan(1, (data.Length - 1) & ~1)))
            : Encoding.UTF8.GetString(data, 1, data.Length - 1);
        var ids = tok.Encode(text, parseSpecial: special);
        Check(ids.All(id => (uint)id < (uint)tok.VocabSize), "an id outside the vocabulary");
        // byte-level BPE loses nothing: the ids decode to the text (lone surrogates as U+FFFD; NFC first where the
        // pre-tokenizer normalizes)
        string expected = ReplaceLoneSurrogates(tok.PreTokenizer.NormalizeNfc && !Nfc.IsStable(text) ? Nfc.Normalize(text) : text);
        string decoded = tok.Decode(ids);
        Check(decoded == expected, $"decode(encode(text)) differs from the text: {Escape(expected)} → {Escape(decoded)}");
        StreamingEqualsWhole(tok, ids);
    }

    private static void StreamingEqualsWhole(BpeTokenizer tok, int[] ids)
    {
        foreach (bool skip in new[] { false, true })
        {
            var d = tok.CreateStreamingDecoder(skipControl: skip);
            var sb = new StringBuilder();
            foreach (int id in ids) sb.Append(d.Push(id));
            sb.Append(d.Flush());
            string whole = tok.Decode(ids, skipControl: skip);
            Check(sb.ToString() == whole, $"streamed decode differs from whole decode: {Escape(whole)} → {Escape(sb.ToString())}");
        }
    }

    private static string ReplaceLoneSurrogates(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { sb.Append(s, i, 2); i++; }
            else sb.Append(char.IsSurrogate(s[i]) ? '\uFFFD' : s[i]);
        }
        return sb.ToString();
    }

    private static string Escape(string s) => JsonSerializer.Serialize(s.Length > 200 ? s[..200] + "…" : s);

    // ---- chat templates ----

    private static readonly string[] s_roles = ["system", "user", "assistant", "tool"];

    /// <summary>
    /// Byte 0: the format (bits 0-1), thinking (bit 2), tools (bit 3), generation prompt (bit 4). The rest, split at
    /// 0x00: messages, each a role byte then its text; an assistant text may hold calls after 0x01 (name 0x02 arguments),
    /// and a part starting 0x03 is a tool definition in OpenAI's JSON.
    /// </summary>
    private static void ChatTemplate(byte[] data)
    {
        if (data.Length == 0) return;
        var kind = (ChatTemplateKind)((data[0] & 3) % 3);
        bool thinking = (data[0] & 4) != 0, withTools = (data[0] & 8) != 0, prompt = (data[0] & 16) != 0;
        var messages = new List<ChatMessage>();
        var tools = new List<ToolDefinition>();
        foreach (var part in Encoding.UTF8.GetString(data, 1, data.Length - 1).Split('\0'))
        {
            if (part.Length == 0) continue;
            if (part[0] == '\u0003')
            {
                try
                {
                    using var doc = JsonDocument.Parse(part[1..]);
                    tools.Add(ToolDefinition.FromOpenAi(doc.RootElement.Clone()));
                }
                catch (Exception e) when (e is JsonException or ArgumentException) { }
                continue;
            }
            string role = s_roles[part[0] % 4], text = part[1..];
            List<ToolCall>? calls = null;
            if (role == "assistant" && text.IndexOf('\u0001') is int at and >= 0)
            {
                calls = text[(at + 1)..].Split('\u0001').Select(c => c.Split('\u0002', 2))
                    .Select(c => new ToolCall("function", c[0], c.Length > 1 ? c[1] : "{}")).ToList();
                text = text[..at];
            }
            messages.Add(new ChatMessage(role, text, calls));
        }
        if (messages.Count == 0) return;
        string rendered = ChatTemplates.Render(kind, messages, "<｜begin▁of▁sentence｜>", prompt, thinking, withTools ? tools : null);
        foreach (var m in messages)
            if (m.Role == "user" && PyStrip(m.Content!) is { Length: > 0 } content)
                Check(rendered.Contains(content, StringComparison.Ordinal), $"a user turn is missing from the prompt: {Escape(content)}");
        _ = ChatTemplates.Detect(rendered, _ => false);
    }

    /// <summary>Jinja's trim (Python's str.strip()), as the templates apply it: .NET's whitespace plus U+001C..U+001F.</summary>
    private static string PyStrip(string s) => s.Trim().Trim('\u001c', '\u001d', '\u001e', '\u001f') is var t && t.Length != s.Length ? PyStrip(t) : t;

    // ---- reasoning and tool-call parsers ----

    /// <summary>
    /// Byte 0: starts in reasoning (bit 0), tool syntax (bits 1-2: none, R1, Hermes, Llama 3 JSON), parallel calls
    /// (bit 3); byte 1 seeds where the text is cut into pieces; the rest is the model's text (UTF-8).
    /// </summary>
    private static void Reasoning(byte[] data)
    {
        if (data.Length < 2) return;
        bool inReasoning = (data[0] & 1) != 0, parallel = (data[0] & 8) != 0;
        ToolCallSyntax? syntax = ((data[0] >> 1) & 3) switch { 0 => null, 1 => ToolCallSyntax.R1, 2 => ToolCallSyntax.Hermes, _ => ToolCallSyntax.Llama3Json };
        string text = Encoding.UTF8.GetString(data, 2, data.Length - 2);

        var whole = new AssistantOutput(inReasoning, syntax, parallel);
        var wholeEvents = Deltas(whole, [text]);
        var pieces = new List<string>();
        var rng = new Random(data[1]);
        for (int i = 0; i < text.Length;)
        {
            int n = Math.Min(text.Length - i, rng.Next(1, 8));
            if (char.IsHighSurrogate(text[i + n - 1]) && i + n < text.Length) n++; // a decoder never splits a pair
            pieces.Add(text.Substring(i, n));
            i += n;
        }
        var streamed = new AssistantOutput(inReasoning, syntax, parallel);
        var streamedEvents = Deltas(streamed, pieces);

        Check(streamed.Reasoning == whole.Reasoning, $"reasoning depends on how the text arrives: {Escape(whole.Reasoning)} vs {Escape(streamed.Reasoning)}");
        Check(streamed.Content == whole.Content, $"content depends on how the text arrives: {Escape(whole.Content)} vs {Escape(streamed.Content)}");
        Check(streamed.CallTruncated == whole.CallTruncated, "the truncated-call flag depends on how the text arrives");
        Check(streamed.Calls.SequenceEqual(whole.Calls), $"tool calls depend on how the text arrives: {Calls(whole)} vs {Calls(streamed)}");
        foreach (var (o, events) in new[] { (whole, wholeEvents), (streamed, streamedEvents) })
        {
            // the deltas add up to the totals, and the call events rebuild the calls
            Check(events.Reasoning == o.Reasoning && events.Content == o.Content, "the deltas do not add up to the output");
            // (a call's arguments end trimmed; a stream cannot know that trailing whitespace ends them until they end)
            var calls = events.Calls.OrderBy(c => c.Key).Select(c => new ParsedToolCall(c.Value.Name, c.Value.Args.ToString().TrimEnd())).ToList();
            Check(calls.Take(o.Calls.Count).SequenceEqual(o.Calls), $"the call events do not rebuild the calls: {Calls(o)}");
            Check(calls.Select((c, i) => i).SequenceEqual(events.Calls.Keys.Order()), "call indices are not 0, 1, 2, ...");
        }
    }

    private static string Calls(AssistantOutput o) => string.Join(";", o.Calls.Select(c => $"{c.Name}({c.Arguments})"));

    private sealed record Collected(string Reasoning, string Content, SortedDictionary<int, (string Name, StringBuilder Args)> Calls);

    private static Collected Deltas(AssistantOutput o, IEnumerable<string> pieces)
    {
        var r = new StringBuilder();
        var c = new StringBuilder();
        var calls = new SortedDictionary<int, (string, StringBuilder)>();
        void Take(OutputDelta d)
        {
            r.Append(d.Reasoning);
            c.Append(d.Content);
            foreach (var e in d.ToolEvents)
                switch (e)
                {
                    case CallStartEvent s:
                        Check(!calls.ContainsKey(s.Index), $"call {s.Index} started twice");
                        calls[s.Index] = (s.Name, new StringBuilder());
                        break;
                    case CallArgumentsEvent a:
                        Check(calls.ContainsKey(a.Index), $"arguments for call {a.Index}, which never started");
                        calls[a.Index].Item2.Append(a.Fragment);
                        break;
                }
        }
        foreach (var p in pieces) Take(o.Push(p));
        Take(o.Finish());
        return new Collected(r.ToString(), c.ToString(), calls);
    }

    // ---- the server's request binding ----

    /// <summary>Byte 0: the endpoint (bit 0: chat, else completions), for chat the template (bits 1-2) and a prompt that opens reasoning (bit 3); the rest is the request body.</summary>
    private static void Request(byte[] data)
    {
        if (data.Length == 0) return;
        var body = new ReadOnlyMemory<byte>(data, 1, data.Length - 1);
        try
        {
            if ((data[0] & 1) != 0)
            {
                var req = Serving.Bind(body, ProtocolJson.Wire.ChatCompletionRequest, ApiEndpoints.Chat);
                var messages = ChatServing.ToMessages(req.Messages);
                _ = ChatServing.Thinking(req);
                var (tools, choice) = ChatServing.Tools(req);
                // response_format, grammar and forced tool calls compile to a constraint over a tiny vocabulary
                var kind = (ChatTemplateKind)((data[0] >> 1) % 3);
                var tiny = s_tinyTokenizer.Value;
                if (ChatServing.Answer(req, tools, choice, (data[0] & 8) != 0, tiny, kind)?.Plan(tiny) is { } constraint)
                    _ = constraint();
                int n = Serving.CheckChoices(req.N);
                for (int i = 0; i < n; i++) _ = Serving.Sampling(req, i);
                _ = ChatTemplates.Render(ChatTemplateKind.R1, messages, "", true, true, choice.ToolsOn ? tools : null);
            }
            else
            {
                var req = Serving.Bind(body, ProtocolJson.Wire.CompletionRequest, ApiEndpoints.Completions);
                int n = Serving.CheckChoices(req.N);
                for (int i = 0; i < n; i++) _ = Serving.Sampling(req, i);
                if (req.Prompt is { } p) Check(p.Count > 0 && (p.Texts is null) != (p.TokenLists is null), "a prompt with no entries, or both texts and ids");
            }
        }
        catch (ApiException e)
        {
            Check(e.Status is >= 400 and < 500, $"a bad request answered {e.Status}");
            Check(!string.IsNullOrEmpty(e.Message), "an error without a message");
        }
    }

    // ---- grammars ----

    private static readonly Lazy<BpeTokenizer> s_tinyTokenizer = new(() => new BpeTokenizer(TinyVocab.Build()));

    private static readonly Lazy<GrammarVocabulary> s_grammarVocab = new(() => GrammarVocabulary.FromTokenizer(new BpeTokenizer(TinyVocab.Build())));

    private static void Gbnf(byte[] data)
    {
        GrammarDefinition def;
        try { def = GbnfParser.Parse(Encoding.UTF8.GetString(data)); }
        catch (GrammarException) { return; }
        Matcher(def, data);
    }

    private static void JsonSchema(byte[] data)
    {
        GrammarDefinition def;
        try { def = JsonSchemaCompiler.Compile(Encoding.UTF8.GetString(data)); }
        catch (GrammarException) { return; }
        Matcher(def, data);
    }

    /// <summary>Compiles the grammar, then walks it a few tokens: each mask must agree with the token-by-token check.</summary>
    private static void Matcher(GrammarDefinition def, byte[] data)
    {
        CompiledGrammar g;
        try { g = CompiledGrammar.Create(def, s_grammarVocab.Value); }
        catch (GrammarException) { return; }
        var m = g.CreateMatcher();
        var mask = new ulong[(m.VocabSize + 63) / 64];
        var rng = new Random(data.Length);
        for (int step = 0; step < 4 && !m.IsTerminated; step++)
        {
            m.FillMask(mask);
            var allowed = new List<int>();
            for (int t = 0; t < m.VocabSize; t++)
            {
                bool inMask = (mask[t >> 6] >> (t & 63) & 1) != 0;
                Check(inMask == m.IsAllowed(t), $"token {t}: the mask says {inMask}, the matcher {!inMask}");
                if (inMask) allowed.Add(t);
            }
            if (allowed.Count == 0) break;
            Check(m.Accept(allowed[rng.Next(allowed.Count)]), "a token the mask allows is refused");
        }
    }
}
