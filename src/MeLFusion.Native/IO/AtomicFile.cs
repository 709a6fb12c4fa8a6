namespace MeLFusion.Native.IO;

/// <summary>Writes a file under a temporary name beside it and renames it into place, so readers never see half a file.</summary>
public static class AtomicFile
{
    private static long _writes;

    public static void Write(string path, Action<FileStream> write)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        // Unique per process and call, so threads writing the same file at once do not share a temporary file.
        long call = Interlocked.Increment(ref _writes);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{call}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
