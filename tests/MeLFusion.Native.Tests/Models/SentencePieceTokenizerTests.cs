using MeLFusion.Native.IO.Protobuf;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Models;

public class SentencePieceTokenizerTests
{
    private static readonly string ModelPath = Path.Combine(Fixture.Directory, "tokenizer", "spiece.model");

    public static TheoryData<int> Prompts => new() { 0, 1, 2, 3, 4, 5, 6, 7 };

    [Theory]
    [MemberData(nameof(Prompts))]
    public void MatchesSentencePieceIdsAndPieces(int prompt)
    {
        using var fixture = Fixture.Open("tokenizer");
        var tokenizer = SentencePieceTokenizer.Load(ModelPath);
        string text = fixture.Meta($"prompt{prompt}.text");
        Assert.Equal(fixture.I32($"prompt{prompt}.ids"), tokenizer.Encode(text));
        string pieces = fixture.Meta($"prompt{prompt}.pieces");
        Assert.Equal(pieces.Length == 0 ? [] : pieces.Split('|'), tokenizer.EncodeAsPieces(text));
    }

    [Fact]
    public void ReadsT5SpecialIds()
    {
        var tokenizer = SentencePieceTokenizer.Load(ModelPath);
        Assert.Equal((0, 1, 2, -1), (tokenizer.PadId, tokenizer.EosId, tokenizer.UnknownId, tokenizer.BosId));
        Assert.Equal(200, tokenizer.VocabularySize);
    }

    [Fact]
    public void DecodeInvertsEncodeForInVocabularyText()
    {
        var tokenizer = SentencePieceTokenizer.Load(ModelPath);
        const string text = "A calm jazz piece with piano and bass.";
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
    }

    [Fact]
    public void CorruptModelsGiveErrorsNamingTheFile()
    {
        byte[] model = File.ReadAllBytes(ModelPath);
        Assert.Contains("bad.model", Assert.Throws<ProtobufException>(() => SentencePieceTokenizer.Parse(model.AsSpan(0, 1001), "bad.model")).Message);
        Assert.Contains("no pieces", Assert.Throws<ProtobufException>(() => SentencePieceTokenizer.Parse([], "empty.model")).Message);
        var rng = new Random(3);
        for (int trial = 0; trial < 200; trial++)
        {
            byte[] bytes = (byte[])model.Clone();
            for (int f = 0; f < 4; f++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            try
            {
                SentencePieceTokenizer.Parse(bytes, "fuzz.model").Encode("a calm piano piece");
            }
            catch (ProtobufException e)
            {
                Assert.Contains("fuzz.model", e.Message);
            }
        }
    }
}
