using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>Input checks shared by the f32 elementwise, activation, normalisation and softmax ops.</summary>
internal static class FloatInputs
{
    /// <summary>Throws unless there are exactly <paramref name="names"/>.Length inputs, all F32.</summary>
    public static void Require(string op, ReadOnlySpan<TensorDesc> inputs, params string[] names)
    {
        if (inputs.Length != names.Length)
            throw new ArgumentException($"{op}: expects {names.Length} input(s) ({string.Join(", ", names)}), got {inputs.Length}");
        for (int i = 0; i < inputs.Length; i++)
            if (inputs[i].DType != DType.F32)
                throw new ArgumentException($"{op}: {names[i]} is {inputs[i]}; only F32 is supported");
    }

    /// <summary>Throws unless <paramref name="parameter"/> is a vector of <paramref name="length"/> elements.</summary>
    public static void RequireVector(string op, TensorDesc parameter, string name, int length, TensorDesc x)
    {
        if (parameter.Shape.Rank != 1 || parameter.Shape[0] != length)
            throw new ArgumentException($"{op}: {name} is {parameter} but x {x} needs [{length}]");
    }
}
