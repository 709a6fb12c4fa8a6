using System.Buffers.Binary;
using System.Text;

namespace MeLFusion.Native.IO.Pickle;

/// <summary>A pickle is malformed or asks for something the restricted unpickler refuses; the message names it.</summary>
public sealed class PickleException(string message) : IOException(message);

/// <summary>A global the unpickler allows: only the constructors a PyTorch state dict needs.</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A storage reference from a persistent id: ('storage', type, key, location, numel).</summary>
public sealed record PickleStorage(string StorageType, string Key, long ElementCount);

/// <summary>The result of torch._utils._rebuild_tensor_v2: a strided view of a storage.</summary>
public sealed record PickleTensor(PickleStorage Storage, long Offset, int[] Shape, long[] Strides);

/// <summary>
/// A pickle virtual machine that rebuilds plain data (dicts, lists, tuples, strings, numbers) and PyTorch tensors,
/// and refuses every global outside <see cref="AllowedGlobals"/>, so a hostile checkpoint cannot run code. All
/// lengths are bounded by the input; memo and stack sizes are bounded.
/// </summary>
public sealed class RestrictedUnpickler
{
    private const int MaxStack = 1 << 20;

    public static readonly IReadOnlySet<string> AllowedGlobals = new HashSet<string>(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
        "torch.ByteStorage", "torch.BoolStorage",
    };

    private readonly byte[] _data;
    private readonly string _source;
    private int _pos;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];

    private RestrictedUnpickler(byte[] data, string source)
    {
        _data = data;
        _source = source;
    }

    /// <summary>Loads one pickled object. Dicts come back as <c>List&lt;KeyValuePair&lt;object?, object?&gt;&gt;</c> in insertion order.</summary>
    public static object? Load(byte[] data, string source) => new RestrictedUnpickler(data, source).Run();

    private PickleException Error(string what) => new($"{_source}: pickle byte {_pos}: {what}");

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("ends without STOP");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: Take(1); break; // PROTO
                case 0x95: Take(8); break; // FRAME
                case (byte)'.': // STOP
                    if (_stack.Count != 1) throw Error($"STOP with {_stack.Count} items on the stack");
                    return _stack[0];
                case (byte)'(': _marks.Add(_stack.Count); break; // MARK
                case (byte)'}': Push(new List<KeyValuePair<object?, object?>>()); break; // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)Take(1)[0]); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8A: Push(ReadLong(Take(1)[0])); break; // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'X': Push(Utf8(Take(Length32()))); break; // BINUNICODE
                case 0x8C: Push(Utf8(Take(Take(1)[0]))); break; // SHORT_BINUNICODE
                case 0x8D: Push(Utf8(Take(Length64()))); break; // BINUNICODE8
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break; // SHORT_BINBYTES
                case (byte)'B': Push(Take(Length32()).ToArray()); break; // BINBYTES
                case (byte)'q': _memo[Take(1)[0]] = Peek(); break; // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                case (byte)'h': Push(Memo(Take(1)[0])); break; // BINGET
                case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'t': Push(PopToMark().ToArray()); break; // TUPLE
                case 0x85: Push(new[] { Pop() }); break; // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; } // APPEND
                case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek()).Add(new(k, v)); break; } // SETITEM
                case (byte)'u': // SETITEMS
                {
                    var items = PopToMark();
                    if (items.Count % 2 != 0) throw Error("SETITEMS with an odd number of items");
                    var dict = AsDict(Peek());
                    for (int i = 0; i < items.Count; i += 2) dict.Add(new(items[i], items[i + 1]));
                    break;
                }
                case (byte)'c': Push(Global(ReadLine(), ReadLine())); break; // GLOBAL
                case 0x93: { var name = Pop() as string; var module = Pop() as string; Push(Global(module ?? throw Error("STACK_GLOBAL module is not a string"), name ?? throw Error("STACK_GLOBAL name is not a string"))); break; }
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'R': { var args = Pop(); var callable = Pop(); Push(Reduce(callable, args)); break; } // REDUCE
                case (byte)'b': Pop(); break; // BUILD: state of an OrderedDict or Parameter; state dicts carry none we need
                default: throw Error($"opcode 0x{op:X2} is not supported by the restricted unpickler");
            }
        }
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > _data.Length - _pos) throw Error($"needs {count} bytes, {_data.Length - _pos} remain");
        var span = _data.AsSpan(_pos, count);
        _pos += count;
        return span;
    }

    private int Length32()
    {
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        if (n > (uint)(_data.Length - _pos)) throw Error($"length {n} runs past the end");
        return (int)n;
    }

    private int Length64()
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
        if (n > (ulong)(_data.Length - _pos)) throw Error($"length {n} runs past the end");
        return (int)n;
    }

    private string Utf8(ReadOnlySpan<byte> bytes)
    {
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw Error("string is not valid UTF-8");
        return Encoding.UTF8.GetString(bytes);
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 256) throw Error("unterminated GLOBAL name");
        string s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private object ReadLong(int length)
    {
        var bytes = Take(length);
        if (length > 8) throw Error($"{length}-byte integer is too large");
        long v = 0;
        for (int i = length - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        if (length is > 0 and < 8 && (bytes[length - 1] & 0x80) != 0) v -= 1L << (8 * length);
        return v;
    }

    private void Push(object? value)
    {
        if (_stack.Count >= MaxStack) throw Error("stack too deep");
        _stack.Add(value);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks[^1])) throw Error("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Error("stack underflow");

    private List<object?> PopToMark()
    {
        if (_marks.Count == 0) throw Error("no MARK");
        int mark = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private object? Memo(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"memo key {key} was never stored");

    private List<object?> AsList(object? o) => o as List<object?> ?? throw Error("APPEND target is not a list");
    private List<KeyValuePair<object?, object?>> AsDict(object? o) => o as List<KeyValuePair<object?, object?>> ?? throw Error("SETITEM target is not a dict");

    private PickleGlobal Global(string module, string name)
    {
        var g = new PickleGlobal(module, name);
        if (!AllowedGlobals.Contains(g.ToString()))
            throw Error($"refuses global '{g}': a checkpoint may only hold tensors and plain data");
        return g;
    }

    private PickleStorage PersistentLoad(object? id)
    {
        if (id is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not PickleGlobal type
            || t[2] is not string key || t[4] is not long numel || numel < 0)
            throw Error("persistent id is not ('storage', type, key, location, numel)");
        return new PickleStorage(type.Name, key, numel);
    }

    private object? Reduce(object? callable, object? args)
    {
        if (callable is not PickleGlobal g) throw Error("REDUCE on something that is not an allowed global");
        var a = args as object?[] ?? throw Error($"{g} called without an argument tuple");
        switch (g.ToString())
        {
            case "collections.OrderedDict":
                return new List<KeyValuePair<object?, object?>>();
            case "torch._utils._rebuild_parameter":
                return a.Length >= 1 && a[0] is PickleTensor p ? p : throw Error("_rebuild_parameter without a tensor");
            case "torch._utils._rebuild_tensor_v2":
                if (a.Length < 4 || a[0] is not PickleStorage storage || a[1] is not long offset
                    || a[2] is not object?[] size || a[3] is not object?[] stride || size.Length != stride.Length)
                    throw Error("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)");
                var shape = size.Select(s => s is long l && l is >= 0 and <= int.MaxValue ? (int)l : throw Error("tensor size is not a non-negative int")).ToArray();
                var strides = stride.Select(s => s is long l && l >= 0 ? l : throw Error("tensor stride is not a non-negative int")).ToArray();
                return new PickleTensor(storage, offset, shape, strides);
            default:
                throw Error($"{g} cannot be called");
        }
    }
}
