// Configures LLamaSharp once, before any test touches it (configuration is refused after the library loads).
using System.Runtime.CompilerServices;
using LLama.Native;

namespace R1Sharp.Oracle.Tests;

internal static class LlamaSharpSetup
{
    [ModuleInitializer]
    internal static void Configure()
    {
        // llama.cpp logs every load at length; only errors are worth showing in test output
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level == LLamaLogLevel.Error) Console.Error.Write(message);
        });
    }
}
