using System.Text;
using MeLFusion.Native.IO.Protobuf;

namespace MeLFusion.Native.Models.Text;

/// <summary>
/// A SentencePiece unigram tokenizer read from a <c>spiece.model</c> file (as shipped with FLAN-T5): the model's own
/// precompiled normalizer (NFKC rules in a double-array trie), whitespace handling, and Viterbi segmentation over
/// piece scores, with runs of unknown characters merged into one unknown token as SentencePiece does.
/// </summary>
public sealed class SentencePieceTokenizer
{
    private const string SpaceSymbol = "\u2581";
    private const float UnknownPenalty = 10f;

    private enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly PieceType[] _types;
    private readonly TrieNode _trie = new();
    private readonly Normalizer _normalizer;
    private readonly float _unknownScore;
    private readonly float _maxScore;

    private sealed class TrieNode
    {
        public Dictionary<byte, TrieNode>? Children;
        public int PieceId = -1;
    }

    private SentencePieceTokenizer(string[] pieces, float[] scores, PieceType[] types, Normalizer normalizer,
        int unkId, int bosId, int eosId, int padId)
    {
        _pieces = pieces;
        _scores = scores;
        _types = types;
        _normalizer = normalizer;
        UnknownId = unkId;
        BosId = bosId;
        EosId = eosId;
        PadId = padId;
        float min = float.MaxValue, max = float.MinValue;
        for (int id = 0; id < pieces.Length; id++)
        {
            if (types[id] is not (PieceType.Normal or PieceType.UserDefined or PieceType.Unused)) continue;
            if (types[id] == PieceType.Normal)
            {
                min = Math.Min(min, scores[id]);
                max = Math.Max(max, scores[id]);
            }
            var node = _trie;
            foreach (byte b in Encoding.UTF8.GetBytes(pieces[id]))
            {
                node.Children ??= [];
                if (!node.Children.TryGetValue(b, out var next)) node.Children[b] = next = new TrieNode();
                node = next;
            }
            node.PieceId = id;
        }
        _unknownScore = (min == float.MaxValue ? 0 : min) - UnknownPenalty;
        _maxScore = max == float.MinValue ? 0 : max;
    }

    public int VocabularySize => _pieces.Length;
    public int UnknownId { get; }
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }
    public string Piece(int id) => _pieces[id];

    public static SentencePieceTokenizer Load(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ProtobufException($"{path}: cannot read: {e.Message}"); }
        return Parse(bytes, path);
    }

    public static SentencePieceTokenizer Parse(ReadOnlySpan<byte> model, string source)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<PieceType>();
        int unk = 0, bos = 1, eos = 2, pad = -1, modelType = 1;
        var normalizer = Normalizer.Identity;
        var reader = new ProtobufReader(model, source);
        while (reader.TryReadKey(out int field, out int wire))
        {
            if (field == 1 && wire == ProtobufReader.WireLengthDelimited)
            {
                var piece = new ProtobufReader(reader.ReadBytes(), source);
                string text = "";
                float score = 0;
                var type = PieceType.Normal;
                while (piece.TryReadKey(out int f, out int w))
                {
                    if (f == 1 && w == ProtobufReader.WireLengthDelimited) text = piece.ReadString();
                    else if (f == 2 && w == ProtobufReader.WireFixed32) score = piece.ReadFloat();
                    else if (f == 3 && w == ProtobufReader.WireVarint) type = (PieceType)(int)piece.ReadVarint();
                    else piece.Skip(w);
                }
                if (type is < PieceType.Normal or > PieceType.Byte) throw reader.Error($"piece '{text}' has unknown type {(int)type}");
                pieces.Add(text);
                scores.Add(score);
                types.Add(type);
            }
            else if (field == 2 && wire == ProtobufReader.WireLengthDelimited)
            {
                var trainer = new ProtobufReader(reader.ReadBytes(), source);
                while (trainer.TryReadKey(out int f, out int w))
                {
                    if (w != ProtobufReader.WireVarint) { trainer.Skip(w); continue; }
                    int value = (int)(long)trainer.ReadVarint();
                    switch (f)
                    {
                        case 3: modelType = value; break;
                        case 40: unk = value; break;
                        case 41: bos = value; break;
                        case 42: eos = value; break;
                        case 43: pad = value; break;
                    }
                }
            }
            else if (field == 3 && wire == ProtobufReader.WireLengthDelimited)
            {
                normalizer = Normalizer.Parse(reader.ReadBytes(), source);
            }
            else reader.Skip(wire);
        }
        if (modelType != 1) throw new ProtobufException($"{source}: model type {modelType} is not a unigram model");
        if (pieces.Count == 0) throw new ProtobufException($"{source}: no pieces");
        foreach (var (name, id) in new[] { ("unk", unk), ("bos", bos), ("eos", eos), ("pad", pad) })
            if (id >= pieces.Count) throw new ProtobufException($"{source}: {name} id {id} is outside the {pieces.Count}-piece vocabulary");
        if (unk < 0 || types[unk] != PieceType.Unknown) throw new ProtobufException($"{source}: unk id {unk} is not an unknown piece");
        return new SentencePieceTokenizer([.. pieces], [.. scores], [.. types], normalizer, unk, bos, eos, pad);
    }

    /// <summary>The normalized text SentencePiece segments (spaces as U+2581, dummy prefix added).</summary>
    public string Normalize(string text) => _normalizer.Normalize(text);

    /// <summary>Token ids of <paramref name="text"/>; T5 appends the end-of-sequence id.</summary>
    public int[] Encode(string text, bool appendEos = true)
    {
        var ids = Segment(Normalize(text)).Select(s => s.Id).ToList();
        if (appendEos && EosId >= 0) ids.Add(EosId);
        return [.. ids];
    }

    public string[] EncodeAsPieces(string text) => Segment(Normalize(text)).Select(s => s.Piece).ToArray();

    /// <summary>Joins pieces back into text, dropping control tokens and turning U+2581 into spaces.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_pieces.Length) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the {_pieces.Length}-piece vocabulary");
            if (_types[id] == PieceType.Control) continue;
            sb.Append(_types[id] == PieceType.Unknown ? " \u2047 " : _pieces[id]);
        }
        return sb.ToString().Replace(SpaceSymbol, " ").TrimStart();
    }

    private List<(int Id, string Piece)> Segment(string normalized)
    {
        byte[] text = Encoding.UTF8.GetBytes(normalized);
        int n = text.Length;
        var bestScore = new float[n + 1];
        var startOf = new int[n + 1];
        var idOf = new int[n + 1];
        Array.Fill(startOf, -1);
        startOf[0] = 0;
        for (int start = 0; start < n; start++)
        {
            if (startOf[start] < 0) continue;
            int charLength = Utf8Length(text[start]);
            bool hasSingleCharacterPiece = false;
            var node = _trie;
            for (int end = start; end < n && node.Children is not null && node.Children.TryGetValue(text[end], out node); end++)
            {
                int id = node.PieceId;
                if (id < 0 || _types[id] == PieceType.Unused) continue;
                int length = end + 1 - start;
                float score = _types[id] == PieceType.UserDefined
                    ? Encoding.UTF8.GetCharCount(text, start, length) * _maxScore - 0.1f
                    : _scores[id];
                Relax(start, end + 1, id, score);
                if (length == charLength) hasSingleCharacterPiece = true;
            }
            if (!hasSingleCharacterPiece) Relax(start, Math.Min(n, start + charLength), UnknownId, _unknownScore);
        }

        void Relax(int from, int to, int id, float score)
        {
            float candidate = bestScore[from] + score;
            if (startOf[to] < 0 || candidate > bestScore[to])
            {
                bestScore[to] = candidate;
                startOf[to] = from;
                idOf[to] = id;
            }
        }

        var result = new List<(int Id, int Start, int End)>();
        for (int end = n; end > 0; end = startOf[end]) result.Add((idOf[end], startOf[end], end));
        result.Reverse();
        // SentencePiece merges a run of unknown pieces into one unknown token.
        var merged = new List<(int Id, string Piece)>();
        for (int i = 0; i < result.Count; i++)
        {
            int j = i;
            if (result[i].Id == UnknownId)
                while (j + 1 < result.Count && result[j + 1].Id == UnknownId) j++;
            merged.Add((result[i].Id, Encoding.UTF8.GetString(text, result[i].Start, result[j].End - result[i].Start)));
            i = j;
        }
        return merged;
    }

    private static int Utf8Length(byte lead) => lead < 0x80 ? 1 : lead >> 5 == 6 ? 2 : lead >> 4 == 14 ? 3 : lead >> 3 == 30 ? 4 : 1;

    /// <summary>SentencePiece's normalizer: precompiled character rules, then whitespace cleanup and escaping.</summary>
    private sealed class Normalizer
    {
        public static readonly Normalizer Identity = new([], [], addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true);

        private readonly uint[] _trie;
        private readonly byte[] _normalized;
        private readonly bool _addDummyPrefix, _removeExtraWhitespaces, _escapeWhitespaces;

        private Normalizer(uint[] trie, byte[] normalized, bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces)
        {
            _trie = trie;
            _normalized = normalized;
            _addDummyPrefix = addDummyPrefix;
            _removeExtraWhitespaces = removeExtraWhitespaces;
            _escapeWhitespaces = escapeWhitespaces;
        }

        public static Normalizer Parse(ReadOnlySpan<byte> spec, string source)
        {
            var reader = new ProtobufReader(spec, source);
            ReadOnlySpan<byte> charsmap = default;
            bool dummy = true, extra = true, escape = true;
            while (reader.TryReadKey(out int f, out int w))
            {
                if (f == 2 && w == ProtobufReader.WireLengthDelimited) charsmap = reader.ReadBytes();
                else if (f == 3 && w == ProtobufReader.WireVarint) dummy = reader.ReadVarint() != 0;
                else if (f == 4 && w == ProtobufReader.WireVarint) extra = reader.ReadVarint() != 0;
                else if (f == 5 && w == ProtobufReader.WireVarint) escape = reader.ReadVarint() != 0;
                else reader.Skip(w);
            }
            if (charsmap.IsEmpty) return new Normalizer([], [], dummy, extra, escape);
            // Layout: trie size (u32), a Darts-clone double-array trie, then NUL-terminated replacement strings.
            if (charsmap.Length < 4) throw new ProtobufException($"{source}: precompiled charsmap is truncated");
            uint trieBytes = BitConverter.ToUInt32(charsmap);
            if (trieBytes % 4 != 0 || trieBytes > charsmap.Length - 4)
                throw new ProtobufException($"{source}: precompiled charsmap trie size {trieBytes} is invalid");
            var trie = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(charsmap.Slice(4, (int)trieBytes)).ToArray();
            return new Normalizer(trie, charsmap[(4 + (int)trieBytes)..].ToArray(), dummy, extra, escape);
        }

        public string Normalize(string text)
        {
            var input = Encoding.UTF8.GetBytes(text).AsSpan();
            var output = new List<byte>(input.Length + 8);
            var spaceBytes = _escapeWhitespaces ? Encoding.UTF8.GetBytes(SpaceSymbol) : [(byte)' '];
            if (_removeExtraWhitespaces)
                while (!input.IsEmpty)
                {
                    var replacement = NormalizePrefix(input, out int consumed);
                    if (!replacement.SequenceEqual(" "u8)) break;
                    input = input[consumed..];
                }
            if (input.IsEmpty) return "";
            if (_addDummyPrefix) output.AddRange(spaceBytes);
            bool previousIsSpace = _removeExtraWhitespaces;
            while (!input.IsEmpty)
            {
                var piece = NormalizePrefix(input, out int consumed);
                while (previousIsSpace && !piece.IsEmpty && piece[0] == (byte)' ') piece = piece[1..];
                if (!piece.IsEmpty)
                {
                    foreach (byte b in piece)
                        if (_escapeWhitespaces && b == (byte)' ') output.AddRange(spaceBytes);
                        else output.Add(b);
                    previousIsSpace = piece[^1] == (byte)' ';
                }
                input = input[consumed..];
                previousIsSpace &= _removeExtraWhitespaces;
            }
            if (_removeExtraWhitespaces)
                while (output.Count >= spaceBytes.Length && output.GetRange(output.Count - spaceBytes.Length, spaceBytes.Length).SequenceEqual(spaceBytes))
                    output.RemoveRange(output.Count - spaceBytes.Length, spaceBytes.Length);
            return Encoding.UTF8.GetString([.. output]);
        }

        /// <summary>The replacement for the longest rule matching the start of <paramref name="input"/>, and the bytes it consumes.</summary>
        private ReadOnlySpan<byte> NormalizePrefix(ReadOnlySpan<byte> input, out int consumed)
        {
            int longest = 0, value = 0;
            if (_trie.Length > 0)
            {
                // Darts-clone common-prefix search.
                uint pos = 0;
                uint unit = _trie[0];
                pos ^= Offset(unit);
                for (int i = 0; i < input.Length; i++)
                {
                    pos ^= input[i];
                    if (pos >= _trie.Length) break;
                    unit = _trie[pos];
                    if ((unit & ((1u << 31) | 0xFF)) != input[i]) break;
                    pos ^= Offset(unit);
                    if (((unit >> 8) & 1) != 0 && pos < _trie.Length)
                    {
                        longest = i + 1;
                        value = (int)(_trie[pos] & 0x7FFFFFFF);
                    }
                }
            }
            if (longest > 0 && value < _normalized.Length)
            {
                int end = Array.IndexOf(_normalized, (byte)0, value);
                consumed = longest;
                return _normalized.AsSpan(value, (end < 0 ? _normalized.Length : end) - value);
            }
            int length = Math.Min(Utf8Length(input[0]), input.Length);
            bool valid = System.Text.Unicode.Utf8.IsValid(input[..length]);
            consumed = valid ? length : 1;
            return valid ? input[..length] : "\uFFFD"u8;
        }

        private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
    }
}
