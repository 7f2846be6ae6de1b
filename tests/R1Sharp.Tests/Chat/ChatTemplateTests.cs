// The C# chat templates against renderings of the real Jinja templates (testdata/chat-templates.json, made by
// oracle/render.mjs with @huggingface/jinja): every conversation, every format, with and without the generation
// prompt, byte for byte. Also Detect on the three real template texts, TryParse, and the no-think prompt.
using System.Text.Json;
using R1Sharp.Chat;

namespace R1Sharp.Tests.Chat;

public class ChatTemplateTests
{
    private static readonly Lazy<JsonDocument> s_data = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Chat", "testdata", "chat-templates.json"))));

    private static JsonElement Root => s_data.Value.RootElement;

    public static TheoryData<string, string, bool> Renders()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var r in Root.GetProperty("renders").EnumerateArray())
            data.Add(r.GetProperty("template").GetString()!, r.GetProperty("case").GetString()!, r.GetProperty("addGenerationPrompt").GetBoolean());
        return data;
    }

    [Theory]
    [MemberData(nameof(Renders))]
    public void RendersByteIdenticalToJinja(string template, string caseName, bool addGenerationPrompt)
    {
        var render = Root.GetProperty("renders").EnumerateArray().Single(r =>
            r.GetProperty("template").GetString() == template && r.GetProperty("case").GetString() == caseName
            && r.GetProperty("addGenerationPrompt").GetBoolean() == addGenerationPrompt);
        Assert.True(ChatTemplates.TryParse(template, out var kind));
        string bos = Root.GetProperty("templates").GetProperty(template).GetProperty("bos").GetString()!;

        string actual = ChatTemplates.Render(kind, Messages(caseName), bos, addGenerationPrompt, tools: Tools(caseName));

        Assert.Equal(render.GetProperty("text").GetString(), actual);
    }

    [Fact]
    public void EveryFormatAndConversationIsCovered()
    {
        var renders = Root.GetProperty("renders").EnumerateArray().ToList();
        Assert.Equal(3, renders.Select(r => r.GetProperty("template").GetString()).Distinct().Count());
        int cases = Root.GetProperty("cases").GetArrayLength();
        Assert.True(cases >= 10);
        // llama3 skips the tool-call conversations, r1 those listing tool definitions (its template ignores them)
        int listing = Root.GetProperty("cases").EnumerateArray().Count(c => c.TryGetProperty("tools", out _));
        Assert.True(listing >= 2);
        Assert.Equal((cases - listing) * 2, renders.Count(r => r.GetProperty("template").GetString() == "r1"));
        Assert.Equal(cases * 2, renders.Count(r => r.GetProperty("template").GetString() == "chatml"));
    }

    [Theory]
    [InlineData("r1", ChatTemplateKind.R1)]
    [InlineData("chatml", ChatTemplateKind.ChatML)]
    [InlineData("llama3", ChatTemplateKind.Llama3)]
    public void DetectRecognizesTheRealTemplateText(string template, ChatTemplateKind expected)
    {
        string text = Root.GetProperty("templates").GetProperty(template).GetProperty("text").GetString()!;
        // the vocabulary must not matter when the template is known: claim every token exists
        Assert.Equal(expected, ChatTemplates.Detect(text, _ => true));
        Assert.Equal(expected, ChatTemplates.Detect(text, _ => false));
    }

    [Fact]
    public void DetectRecognizesTheTemplateOfTheSynthesizedVocabulary() =>
        Assert.Equal(ChatTemplateKind.R1, ChatTemplates.Detect(R1Sharp.Tokenization.R1Vocab.DistillQwenChatTemplate, _ => false));

    [Fact]
    public void DetectFallsBackToTheVocabulary()
    {
        string[] r1DistillQwen = ["<｜User｜>", "<｜Assistant｜>", "<|im_start|>", "<|im_end|>"];
        string[] r1DistillLlama = ["<｜User｜>", "<｜Assistant｜>", "<|start_header_id|>", "<|eot_id|>"];
        string[] qwen = ["<|im_start|>", "<|im_end|>"];
        string[] llama = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>"];
        Assert.Equal(ChatTemplateKind.R1, ChatTemplates.Detect(null, r1DistillQwen.Contains));
        Assert.Equal(ChatTemplateKind.R1, ChatTemplates.Detect("", r1DistillLlama.Contains));
        Assert.Equal(ChatTemplateKind.ChatML, ChatTemplates.Detect(null, qwen.Contains));
        Assert.Equal(ChatTemplateKind.Llama3, ChatTemplates.Detect("{{ unknown }}", llama.Contains));
        Assert.Equal(ChatTemplateKind.R1, ChatTemplates.Detect(null, _ => false));
    }

    [Theory]
    [InlineData("r1", ChatTemplateKind.R1)]
    [InlineData("R1", ChatTemplateKind.R1)]
    [InlineData("chatml", ChatTemplateKind.ChatML)]
    [InlineData("ChatML", ChatTemplateKind.ChatML)]
    [InlineData("llama3", ChatTemplateKind.Llama3)]
    public void TryParseTakesTheTemplateNames(string name, ChatTemplateKind expected)
    {
        Assert.True(ChatTemplates.TryParse(name, out var kind));
        Assert.Equal(expected, kind);
        Assert.True(ChatTemplates.TryParse(ChatTemplates.Name(kind), out var back));
        Assert.Equal(kind, back);
    }

    [Theory]
    [InlineData("")]
    [InlineData("mistral")]
    [InlineData("llama2")]
    public void TryParseRejectsOtherNames(string name) => Assert.False(ChatTemplates.TryParse(name, out _));

    [Fact]
    public void ThinkingOffClosesTheThinkBlockInTheR1Prompt()
    {
        ChatMessage[] messages = [ChatMessage.User("Hi")];
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n\n</think>\n\n",
            ChatTemplates.Render(ChatTemplateKind.R1, messages, "<｜begin▁of▁sentence｜>", addGenerationPrompt: true, thinking: false));
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n",
            ChatTemplates.Render(ChatTemplateKind.R1, messages, "<｜begin▁of▁sentence｜>", addGenerationPrompt: true));
        // without a generation prompt, or in the formats that have no think block, the switch changes nothing
        Assert.Equal(ChatTemplates.Render(ChatTemplateKind.R1, messages, "B", false),
            ChatTemplates.Render(ChatTemplateKind.R1, messages, "B", false, thinking: false));
        foreach (var kind in new[] { ChatTemplateKind.ChatML, ChatTemplateKind.Llama3 })
            Assert.Equal(ChatTemplates.Render(kind, messages, "B", true), ChatTemplates.Render(kind, messages, "B", true, thinking: false));
    }

    [Fact]
    public void OnlyR1WithThinkingOpensTheThinkBlock()
    {
        Assert.True(ChatTemplates.PromptOpensThink(ChatTemplateKind.R1, thinking: true));
        Assert.False(ChatTemplates.PromptOpensThink(ChatTemplateKind.R1, thinking: false));
        Assert.False(ChatTemplates.PromptOpensThink(ChatTemplateKind.ChatML, thinking: true));
        Assert.False(ChatTemplates.PromptOpensThink(ChatTemplateKind.Llama3, thinking: true));
    }

    private static List<ToolDefinition>? Tools(string caseName)
    {
        var c = Root.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == caseName);
        return c.TryGetProperty("tools", out var tools) ? tools.EnumerateArray().Select(ToolDefinition.FromOpenAi).ToList() : null;
    }

    private static List<ChatMessage> Messages(string caseName)
    {
        var c = Root.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == caseName);
        var list = new List<ChatMessage>();
        foreach (var m in c.GetProperty("messages").EnumerateArray())
        {
            List<ToolCall>? calls = null;
            if (m.TryGetProperty("tool_calls", out var tc))
                calls = tc.EnumerateArray().Select(t => new ToolCall(t.GetProperty("type").GetString()!,
                    t.GetProperty("function").GetProperty("name").GetString()!,
                    t.GetProperty("function").GetProperty("arguments").GetString()!)).ToList();
            var content = m.GetProperty("content");
            list.Add(new ChatMessage(m.GetProperty("role").GetString()!,
                content.ValueKind == JsonValueKind.Null ? null : content.GetString(), calls));
        }
        return list;
    }
}
