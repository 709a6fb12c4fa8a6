namespace MeLFusion.Native.IO.Safetensors;

/// <summary>A safetensors file is malformed, hostile or lacks what was asked; the message names file and tensor.</summary>
public sealed class SafetensorsException(string message) : IOException(message);
