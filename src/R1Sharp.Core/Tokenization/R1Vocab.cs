// The DeepSeek-R1 special tokens and the R1-Distill vocabularies: Qwen2.5's with the R1 tokens overlaid on ids
// 151643..151649, and Llama 3.1's with them on 128000, 128001 and 128011..128015, as DeepSeek-R1-Distill-Qwen's and
// DeepSeek-R1-Distill-Llama's tokenizer.json have them.
namespace R1Sharp.Tokenization;

public static class R1Vocab
{
    // The bars are U+FF5C (FULLWIDTH VERTICAL LINE), the word separator U+2581 (LOWER ONE EIGHTH BLOCK).
    public const string BeginOfSentence = "<｜begin▁of▁sentence｜>";
    public const string EndOfSentence = "<｜end▁of▁sentence｜>";
    public const string User = "<｜User｜>";
    public const string Assistant = "<｜Assistant｜>";
    public const string Eot = "<|EOT|>";
    public const string ThinkStart = "<think>";
    public const string ThinkEnd = "</think>";

    /// <summary>The R1 special tokens in R1-Distill-Qwen's id order (151643..), with their llama.cpp token types.</summary>
    public static IReadOnlyList<(string Text, int Type)> SpecialTokens { get; } =
    [
        (EndOfSentence, TokenType.Control),
        (User, TokenType.Control),
        (Assistant, TokenType.Control),
        (BeginOfSentence, TokenType.Control),
        (Eot, TokenType.Control),
        (ThinkStart, TokenType.UserDefined), // not special in tokenizer_config, and does not look special to convert_hf_to_gguf.py
        (ThinkEnd, TokenType.UserDefined),
    ];

    /// <summary>The first id of the R1 tokens in R1-Distill-Qwen (<see cref="EndOfSentence"/>; bos is 151646).</summary>
    public const int DistillQwenFirstSpecialId = 151643;

    /// <summary>
    /// The R1-Distill-Qwen tokenizer from the Qwen2.5 one: ids 151643..151649 become the R1 tokens, bos 151646,
    /// eos and pad 151643, bos added, pre-tokenizer "deepseek-r1-qwen", the R1-Distill chat template.
    /// </summary>
    public static TokenizerData ApplyDistillQwenOverlay(TokenizerData qwen25)
    {
        ArgumentNullException.ThrowIfNull(qwen25);
        int first = DistillQwenFirstSpecialId;
        var overlay = SpecialTokens.Select((t, i) => (first + i, t.Text, t.Type)).ToArray();
        return Overlay(qwen25, overlay, "the Qwen2.5 one has 151665") with
        {
            Pre = "deepseek-r1-qwen", BosId = first + 3, EosId = first, PadId = first, AddBos = true, ChatTemplate = DistillQwenChatTemplate,
        };
    }

    /// <summary>R1-Distill-Llama's token ids of the R1 tokens it puts over Llama 3.1's (bos 128000, eos 128001).</summary>
    public static IReadOnlyList<(int Id, string Text, int Type)> DistillLlamaTokens { get; } =
    [
        (128000, BeginOfSentence, TokenType.Control),
        (128001, EndOfSentence, TokenType.Control),
        (128011, User, TokenType.Control),
        (128012, Assistant, TokenType.Control),
        (128013, ThinkStart, TokenType.UserDefined),
        (128014, ThinkEnd, TokenType.UserDefined),
        (128015, "<｜▁pad▁｜>", TokenType.Control),
    ];

    /// <summary>
    /// The R1-Distill-Llama tokenizer from the Llama 3.1 one: <see cref="DistillLlamaTokens"/> over its ids, bos
    /// 128000, eos and pad 128001, bos added, the R1-Distill chat template (the same text as R1-Distill-Qwen's).
    /// </summary>
    public static TokenizerData ApplyDistillLlamaOverlay(TokenizerData llama31)
    {
        ArgumentNullException.ThrowIfNull(llama31);
        return Overlay(llama31, DistillLlamaTokens, "the Llama 3.1 one has 128256") with
        {
            BosId = 128000, EosId = 128001, PadId = 128001, AddBos = true, ChatTemplate = DistillQwenChatTemplate,
        };
    }

    private static TokenizerData Overlay(TokenizerData vocab, IReadOnlyList<(int Id, string Text, int Type)> tokens, string expected)
    {
        if (vocab.Tokens.Length <= tokens.Max(t => t.Id))
            throw new ArgumentException($"The vocabulary has {vocab.Tokens.Length} tokens; {expected}.", nameof(vocab));
        string[] texts = (string[])vocab.Tokens.Clone();
        int[] types = (int[])vocab.TokenTypes.Clone();
        foreach (var (id, text, type) in tokens) (texts[id], types[id]) = (text, type);
        return vocab with { Tokens = texts, TokenTypes = types };
    }

    /// <summary>The R1-Distill chat template (tokenizer_config.json's, in the whitespace-controlled form llama.cpp keeps).</summary>
    public const string DistillQwenChatTemplate = """
{% if not add_generation_prompt is defined -%}
  {%- set add_generation_prompt = false -%}
{%- endif -%}
{%- set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') -%}
{%- for message in messages -%}
  {%- if message['role'] == 'system' -%}
    {%- set ns.system_prompt = message['content'] -%}
  {%- endif -%}
{%- endfor -%}{{bos_token}}{{ns.system_prompt}}
{%- for message in messages -%}
  {%- if message['role'] == 'user' -%}
    {%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}
  {%- endif -%}
  {%- if message['role'] == 'assistant' and message['tool_calls'] -%}
    {%- set ns.is_tool = false -%}
    {%- for tool in message['tool_calls']-%}
      {%- if not ns.is_first -%}
        {{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}
        {%- set ns.is_first = true -%}
      {%- else -%}
        {{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}
      {%- endif -%}
    {%- endfor -%}
    {{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}
  {%- endif -%}
  {%- if message['role'] == 'assistant' and message['content'] is not none -%}
    {%- if ns.is_tool -%}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}
      {%- set ns.is_tool = false -%}
    {%- else -%}
      {%- set content = message['content'] -%}
      {%- if '</think>' in content -%}
        {%- set content = content.split('</think>')[-1] -%}
      {%- endif -%}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}
    {%- endif -%}
  {%- endif -%}
  {%- if message['role'] == 'tool' -%}
    {%- set ns.is_tool = true -%}
    {%- if ns.is_output_first -%}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}
      {%- set ns.is_output_first = false -%}
      {%- else -%}{{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}
    {%- endif -%}
  {%- endif -%}
{%- endfor -%}
{%- if ns.is_tool -%}{{'<｜tool▁outputs▁end｜>'}}
{%- endif -%}
{%- if add_generation_prompt and not ns.is_tool -%}{{'<｜Assistant｜><think>\n'}}
{%- endif %}
""";
}
