// Prints the server's request field tables (src/R1Sharp.Server/Protocol/RequestFields.cs) as README.md and
// docs/server.md show them: `dotnet run scripts/request-fields.cs` (the supported fields) or `... all`.
#:sdk Microsoft.NET.Sdk.Web
#:project ../src/R1Sharp.Server/R1Sharp.Server.csproj
using R1Sharp.Server.Protocol;

Console.Write(args is ["all"] ? RequestFields.MarkdownTable() : RequestFields.MarkdownTable(FieldStatus.Supported));
