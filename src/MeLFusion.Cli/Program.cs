using System.CommandLine;
using System.Runtime.InteropServices;
using MeLFusion.Cli.Commands;

namespace MeLFusion.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("MeLFusion.Native: text + image to music, on the CPU or a CUDA GPU")
        {
            GenerateCommand.Create(),
            ConvertCommand.Create(),
            DatasetCommand.Create(),
            InitCommand.Create(),
            InspectCommand.Create(),
            TrainCommand.Create(),
            EvaluateCommand.Create(),
        };
        // One termination handler for every command: the first Ctrl-C or SIGTERM cancels the token the commands check
        // (generate stops between nodes, train after the current step with a checkpoint) and the process waits for
        // them however long that takes; a second Ctrl-C ends the process at once.
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (stop.IsCancellationRequested) return;
            e.Cancel = true;
            stop.Cancel();
        };
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null };
        return root.Parse(args).InvokeAsync(invocation, stop.Token).GetAwaiter().GetResult();
    }
}
