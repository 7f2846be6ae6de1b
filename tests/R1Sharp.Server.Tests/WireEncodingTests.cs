// Response bodies escape only what JSON requires, as OpenAI and DeepSeek send them: "17+25", "<think>", "&", CJK and
// emoji as themselves; quotes, backslashes and control characters escaped.
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using R1Sharp.Server.Protocol;

namespace R1Sharp.Server.Tests;

public sealed partial class WireEncodingTests
{
    // any \u escape of a character JSON does not require to be escaped (U+0020 and above; the server never
    // writes lone surrogates: its text comes from whole UTF-8 sequences)
    [GeneratedRegex(@"\\u(?!00[01][0-9a-fA-F])[0-9a-fA-F]{4}")]
    private static partial Regex NeedlessEscape();

    [Fact]
    public void OrdinaryCharactersTravelAsThemselves()
    {
        const string text = "17+25 <think> & 'q' 中文 🙂 ｜ \"quoted\" back\\slash\nline\ttab\u0001";
        var response = new ChatCompletionResponse
        {
            Id = "chatcmpl-1", Created = 1, Model = "m",
            Choices = [new ChatChoice { Index = 0, Message = new ResponseMessage { Content = text, ReasoningContent = text }, FinishReason = "stop" }],
        };
        string json = JsonSerializer.Serialize(response, ProtocolJson.Wire.ChatCompletionResponse);
        const string expected = "17+25 <think> & 'q' 中文 🙂 ｜ \\\"quoted\\\" back\\\\slash\\nline\\ttab\\u0001";
        Assert.Contains($"\"content\":\"{expected}\"", json);
        Assert.Contains($"\"reasoning_content\":\"{expected}\"", json);
        Assert.DoesNotMatch(NeedlessEscape(), json);
        Assert.Equal(text, JsonDocument.Parse(json).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task ErrorBodiesCarryTheRequestsTextAsItIs()
    {
        await using var h = await ServerHarness.StartAsync();
        const string model = "模型+<&>🙂";
        using var r = await h.PostAsync("/v1/chat/completions",
            JsonSerializer.Serialize(new { model, messages = new[] { new { role = "user", content = "hi" } } }));
        string raw = await r.Content.ReadAsStringAsync();
        Assert.Equal(404, (int)r.StatusCode);
        Assert.Contains($"The model '{model}' does not exist", raw);
        Assert.DoesNotMatch(NeedlessEscape(), raw);
    }

    [Fact]
    public async Task ResponsesAndStreamChunksAreNotEscapedBeyondJson()
    {
        await using var h = await ServerHarness.StartAsync();
        // a random model over the tiny vocabulary writes punctuation, '+', '<' and special-token text
        const string body = """{"messages":[{"role":"user","content":"Hello"}],"max_tokens":48,"temperature":1,"seed":3,"n":4,"ignore_eos":true,"reasoning_budget":16}""";
        using (var r = await h.PostAsync("/v1/chat/completions", body))
        {
            string raw = await r.Content.ReadAsStringAsync();
            Assert.Equal(200, (int)r.StatusCode);
            Assert.DoesNotMatch(NeedlessEscape(), raw);
            Assert.Matches(@"[+<>&]|[^\x00-\x7F]", string.Concat(JsonDocument.Parse(raw).RootElement.GetProperty("choices").EnumerateArray()
                .Select(c => c.GetProperty("message").GetProperty("content").GetString() + c.GetProperty("message").GetProperty("reasoning_content").GetString())));
        }
        using (var r = await h.PostAsync("/v1/chat/completions", body.Replace("\"n\":4", "\"n\":4,\"stream\":true")))
        {
            string raw = await r.Content.ReadAsStringAsync();
            Assert.Contains("data: [DONE]", raw);
            Assert.DoesNotMatch(NeedlessEscape(), raw);
        }
        using (var r = await h.PostAsync("/v1/completions", """{"prompt":"1+2 <a> & 中","max_tokens":32,"temperature":1,"seed":5,"n":4,"ignore_eos":true}"""))
        {
            string raw = await r.Content.ReadAsStringAsync();
            Assert.Equal(200, (int)r.StatusCode);
            Assert.DoesNotMatch(NeedlessEscape(), raw);
        }
    }
}
