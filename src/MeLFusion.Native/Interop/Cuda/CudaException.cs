namespace MeLFusion.Native.Interop.Cuda;

/// <summary>A failed CUDA driver or cuBLAS call: the error's name, its description and the call that failed.</summary>
public sealed class CudaException(string call, string errorName, string description)
    : Exception($"{call} failed: {errorName} ({description})")
{
    public string Call { get; } = call;
    public string ErrorName { get; } = errorName;
}

/// <summary>The CUDA driver or a CUDA library cannot be loaded on this machine.</summary>
public sealed class CudaUnavailableException(string message) : Exception(message);
