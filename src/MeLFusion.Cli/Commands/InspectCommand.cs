using System.CommandLine;
using MeLFusion.Native.IO.Pickle;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Runtime;
using Spectre.Console;

namespace MeLFusion.Cli.Commands;

/// <summary><c>inspect FILE</c>: lists the tensors of a safetensors file or a PyTorch checkpoint.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("file") { Description = "a .safetensors file or a zip-format PyTorch checkpoint (.bin, .pt, .pth)" };
        var command = new Command("inspect", "List the tensors (name, dtype, shape) in a checkpoint") { file };
        command.SetAction(parse => Run(parse.GetValue(file)!));
        return command;
    }

    private static int Run(FileInfo file)
    {
        try
        {
            var table = new Table().AddColumns("tensor", "dtype", "shape");
            if (file.Extension == ".safetensors")
            {
                using var st = SafetensorsFile.Open(file.FullName);
                foreach (var e in st.Entries) table.AddRow(Markup.Escape(e.Name), e.DType.SafetensorsName(), $"[[{string.Join(", ", e.Shape)}]]");
                foreach (var (k, v) in st.Metadata) AnsiConsole.MarkupLine($"[grey]metadata[/] {Markup.Escape(k)} = {Markup.Escape(v)}");
            }
            else
            {
                using var pt = TorchCheckpoint.Open(file.FullName);
                foreach (string name in pt.Names.Order(StringComparer.Ordinal))
                {
                    var t = pt.Info(name);
                    table.AddRow(Markup.Escape(name), t.Storage.StorageType, $"[[{string.Join(", ", t.Shape)}]]");
                }
            }
            AnsiConsole.Write(table);
            return 0;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
