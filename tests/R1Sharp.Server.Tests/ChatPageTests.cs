// The chat page at / in a real browser (headless Chromium over the DevTools protocol): a question typed into the
// page streams back as a collapsible reasoning block and an answer, the same text the API gives for the same request.
// A screenshot is kept under the test output's TestResults/ for a person to look at.
using System.Text.Json;
using R1Sharp.Server.Tests.Browser;
using Xunit.Abstractions;

namespace R1Sharp.Server.Tests;

public sealed class ChatPageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RootServesTheSelfContainedChatPage()
    {
        await using var h = await ServerHarness.StartAsync(o => o with { ApiKey = "secret" });
        using var r = await h.Http.GetAsync("/");   // open even with an API key: the page asks for the key itself
        Assert.Equal(200, (int)r.StatusCode);
        Assert.Equal("text/html", r.Content.Headers.ContentType?.MediaType);
        string html = await r.Content.ReadAsStringAsync();
        Assert.Contains("<details", html);
        Assert.Contains("/v1/chat/completions", html);
        // no external assets
        Assert.DoesNotContain("src=\"http", html);
        Assert.DoesNotContain("href=\"http", html);
    }

    [Fact]
    public async Task AQuestionTypedInTheBrowserStreamsReasoningAndAnswer()
    {
        await using var h = await ServerHarness.StartAsync();
        await using var browser = await HeadlessChromium.LaunchAsync();
        const string query = "?temperature=0&max_tokens=40&reasoning_budget=8";
        await browser.NavigateAsync(new Uri(h.BaseAddress, "/" + query).ToString());
        await browser.WaitForAsync("document.getElementById('model').textContent === 'tiny'", "the page showed the model id");

        await browser.EvalAsync("document.getElementById('input').focus()");
        await browser.TypeAsync("What is 17+25?", enter: true);
        await browser.WaitForAsync("document.querySelector('.msg.assistant')?.dataset.state === 'done'", "the answer finished streaming");

        var page = (await browser.EvalAsync("""
            (() => {
              const m = document.querySelector('.msg.assistant'), d = m.querySelector('details.reasoning');
              return { question: document.querySelector('.msg.user').textContent, hidden: d.hidden, open: d.open,
                       summary: d.querySelector('summary').textContent, reasoning: d.querySelector('.thoughts').textContent,
                       answer: m.querySelector('.text').textContent, stats: m.querySelector('.stats').textContent,
                       input: document.getElementById('input').value };
            })()
            """))!;
        Assert.Equal("What is 17+25?", (string?)page["question"]);
        Assert.Equal("", (string?)page["input"]);
        Assert.False((bool)page["hidden"]!);
        Assert.False((bool)page["open"]!);   // collapsed once the answer started
        Assert.StartsWith("Thought for ", (string?)page["summary"]);
        Assert.Contains("tok/s", (string?)page["stats"]);

        // the page shows what the API returns for the same (greedy) request
        var (status, body) = await h.PostJsonAsync("/v1/chat/completions", JsonSerializer.Serialize(new
        {
            messages = new[] { new { role = "user", content = "What is 17+25?" } }, temperature = 0, max_tokens = 40, reasoning_budget = 8,
        }));
        Assert.Equal(200, status);
        var message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.NotEmpty(message.GetProperty("reasoning_content").GetString()!);
        Assert.NotEmpty(message.GetProperty("content").GetString()!);
        Assert.Equal(message.GetProperty("reasoning_content").GetString(), (string?)page["reasoning"]);
        Assert.Equal(message.GetProperty("content").GetString(), (string?)page["answer"]);

        string dir = Path.Combine(AppContext.BaseDirectory, "TestResults");
        string collapsed = Path.Combine(dir, "chat-page.png");
        await browser.ScreenshotAsync(collapsed);
        // the block opens on a click
        await browser.EvalAsync("document.querySelector('details.reasoning summary').click()");
        await browser.WaitForAsync("document.querySelector('details.reasoning').open", "the reasoning block opened");
        string expanded = Path.Combine(dir, "chat-page-reasoning-open.png");
        await browser.ScreenshotAsync(expanded);
        output.WriteLine($"screenshots: {collapsed} {expanded}");
        Console.WriteLine($"chat page screenshots: {collapsed} {expanded}");
        Assert.True(new FileInfo(collapsed).Length > 1000);
        lock (browser.PageErrors) Assert.Empty(browser.PageErrors);
    }
}
