// r1sharp: the command line. Each verb lives in its own file; this one wires them up.
using System.CommandLine;
using R1Sharp.Cli;

var root = new RootCommand("R1Sharp: run, serve and train DeepSeek-R1 reasoning models in pure .NET");
root.Subcommands.Add(ChatCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(GrammarCommand.Create());
root.Subcommands.Add(SynthCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(InfoCommand.Create());
root.Subcommands.Add(QuantizeCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(SplitCommand.Create());
root.Subcommands.Add(MergeCommand.Create());
root.Subcommands.Add(ImatrixCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());

Console.OutputEncoding = System.Text.Encoding.UTF8;
return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
