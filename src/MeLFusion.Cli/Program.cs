using System.CommandLine;
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
        return root.Parse(args).Invoke();
    }
}
