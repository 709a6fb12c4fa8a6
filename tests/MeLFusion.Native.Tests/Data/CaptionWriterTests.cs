using MeLFusion.Native.Data.Synth;

namespace MeLFusion.Native.Tests.Data;

public sealed class CaptionWriterTests
{
    [Fact]
    public void CaptionsNeverGiveAwayMoodOrTempo()
    {
        var space = new AttributeSpace();
        var distinct = new HashSet<string>();
        for (int seed = 0; seed < 4000; seed++)
        {
            var a = space.Sample(new Random(seed));
            string caption = CaptionWriter.Write(a, new Random(seed * 7 + 1));
            distinct.Add(caption);
            Assert.True(CaptionWriter.FindForbiddenWord(caption) is null, $"'{CaptionWriter.FindForbiddenWord(caption)}' in: {caption}");
            Assert.DoesNotMatch($@"\b{a.TempoBpm}\b", caption); // "TR-808" is fine, "at 80" would not be
        }
        Assert.True(distinct.Count > 3900, $"only {distinct.Count} distinct captions");
    }

    [Fact]
    public void CaptionsNameGenreAndEveryInstrument()
    {
        var space = new AttributeSpace();
        for (int seed = 0; seed < 1000; seed++)
        {
            var a = space.Sample(new Random(seed));
            string caption = CaptionWriter.Write(a, new Random(seed));
            Assert.Contains(GenreStyle.Of(a.Genre).CaptionNames, name => caption.Contains(name, StringComparison.OrdinalIgnoreCase));
            foreach (var instrument in new[] { a.Melody, a.Chords, a.Bass, a.Drums })
                if (instrument is not null) Assert.Contains(instrument.Name, caption, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("  ", caption);
            Assert.True(char.IsUpper(caption[0]), caption);
            Assert.EndsWith(".", caption);
        }
    }

    [Theory]
    [InlineData("A slow jazz tune with piano.", "slow")]
    [InlineData("An upbeat rock song.", "upbeat")]
    [InlineData("Dreamy ambient pads.", "dreamy")]
    [InlineData("Rock at 120 beats per minute.", "beats per minute")]
    [InlineData("A laid-back hip hop groove.", "laid-back")]
    [InlineData("A piano melody over a drum kit.", null)]
    [InlineData("Sadness is not a whole word match for sad.", "sad")]
    [InlineData("Brightness and darkness are other words.", null)]
    public void ForbiddenWordsMatchWholeWords(string caption, string? expected) =>
        Assert.Equal(expected, CaptionWriter.FindForbiddenWord(caption)?.ToLowerInvariant());

    [Fact]
    public void CaptionsAreReproducibleForASeed()
    {
        var a = new AttributeSpace().Sample(new Random(3));
        Assert.Equal(CaptionWriter.Write(a, new Random(9)), CaptionWriter.Write(a, new Random(9)));
    }
}
