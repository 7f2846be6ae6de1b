// serve: the OpenAI/DeepSeek-compatible HTTP server (R1Sharp.Server) on one model, until SIGTERM or Ctrl+C.
using System.CommandLine;
using Microsoft.Extensions.Logging;
using R1Sharp.Server;

namespace R1Sharp.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var host = new Option<string>("--host") { Description = "address to bind (an IP address or localhost)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "require 'Authorization: Bearer KEY' on /v1/*" };
        var parallel = new Option<int>("--parallel", "-np") { Description = "sequences decoded together (KV-cache slots)", DefaultValueFactory = _ => 4 };
        var ctx = new Option<int>("--ctx", "-c") { Description = "context per slot in tokens (default: min(model's, 4096))" };
        var maxQueue = new Option<int>("--max-queue") { Description = "requests waiting for a slot before 429", DefaultValueFactory = _ => 64 };
        var prefillChunk = new Option<int>("--prefill-chunk", "-ub")
        {
            Description = "prompt tokens prefilled per step, shared by all sequences (chunked prefill; as llama.cpp's --ubatch-size)",
            DefaultValueFactory = _ => ServerOptions.DefaultPrefillChunk,
        };
        var name = new Option<string?>("--model-name") { Description = "the model id clients send (default: the file name without .gguf)" };
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cacheType = CliCommon.CacheTypeOption();
        var cmd = new Command("serve", "serve a model over an OpenAI/DeepSeek-compatible HTTP API")
        {
            model, host, port, apiKey, parallel, ctx, maxQueue, prefillChunk, name, threads, mmap, cacheType,
        };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var options = new ServerOptions
            {
                ModelPath = r.GetValue(model)!,
                Host = r.GetValue(host)!,
                Port = r.GetValue(port),
                ApiKey = r.GetValue(apiKey),
                Parallel = r.GetValue(parallel),
                ContextSize = r.GetValue(ctx),
                MaxQueue = r.GetValue(maxQueue),
                PrefillChunk = r.GetValue(prefillChunk),
                ModelName = r.GetValue(name),
                Threads = r.GetValue(threads),
                CacheType = CliCommon.CacheType(r.GetValue(cacheType)),
            };
            if (!File.Exists(options.ModelPath)) throw new FileNotFoundException($"model file not found: {options.ModelPath}");
            R1Server.CheckOptions(options);
            using var lm = CliProgress.LoadModel(options.ModelPath, options.Threads, r.GetValue(mmap), reportPlain: true);
            var server = R1Server.Create(options, lm, logging: l => l.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
            try
            {
                server.StartAsync().GetAwaiter().GetResult();
                Console.Error.WriteLine($"r1sharp: serving '{server.ModelId}' at {server.BaseAddress} " +
                                        $"({options.Parallel} slots x {server.Scheduler.ContextSize} tokens); chat page at {server.BaseAddress}; Ctrl+C to stop");
                server.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            return 0;
        }));
        return cmd;
    }
}
