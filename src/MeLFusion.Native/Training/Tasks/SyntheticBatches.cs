using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// A tiny procedural data set for smoke runs and tests of every model kind: example k is a chord of two sine tones
/// whose pitches and loudness envelope depend on k, an image whose colour and stripes depend on the same parameters,
/// and a caption naming them ("a low bright tone"). Everything is a function of the seed and the example number.
/// </summary>
public sealed class SyntheticBatches(int batchSize, int clipSamples, int imageSize, int examples, int validationBatches, ulong seed, int sampleRate = 16000)
    : IBatchSource
{
    private static readonly string[] Pitches = ["low", "middle", "high", "very high"];
    private static readonly string[] Timbres = ["dark", "bright"];

    public int BatchSize => batchSize;
    public int ClipSamples => clipSamples;
    public int ImageSize => imageSize;
    public int ValidationBatches => validationBatches;

    public MicroBatch Training(long index) => Batch(index * batchSize);

    /// <summary>Validation examples come after the training ones, so the two never overlap.</summary>
    public MicroBatch Validation(int index) => Batch((long)examples + (long)index * batchSize, wrap: false);

    private MicroBatch Batch(long first, bool wrap = true)
    {
        var captions = new string[batchSize];
        var keys = new string[batchSize];
        var audio = new float[batchSize * clipSamples];
        var images = imageSize > 0 ? new float[batchSize * 3 * imageSize * imageSize] : null;
        for (int b = 0; b < batchSize; b++)
        {
            long example = wrap ? (first + b) % examples : first + b;
            keys[b] = $"synthetic-{example}";
            var raw = new uint[2];
            Philox.FillRaw(seed, (ulong)example * 2, raw);
            int pitch = (int)(raw[0] % Pitches.Length), timbre = (int)(raw[1] % Timbres.Length);
            captions[b] = $"a {Pitches[pitch]} {Timbres[timbre]} tone";
            double frequency = 110 * Math.Pow(2, pitch + raw[0] % 7 / 12.0);
            for (int i = 0; i < clipSamples; i++)
            {
                double time = (double)i / sampleRate;
                double tone = Math.Sin(2 * Math.PI * frequency * time) + (timbre == 1 ? 0.5 * Math.Sin(2 * Math.PI * 3 * frequency * time) : 0);
                audio[b * clipSamples + i] = (float)(0.3 * tone * (0.6 + 0.4 * Math.Sin(Math.PI * i / clipSamples)));
            }
            if (images is null) continue;
            int plane = imageSize * imageSize;
            for (int y = 0; y < imageSize; y++)
            for (int x = 0; x < imageSize; x++)
            {
                float stripes = ((x + y) * (pitch + 1) / Math.Max(1, imageSize / 4)) % 2 == 0 ? 0.6f : -0.6f;
                int at = b * 3 * plane + y * imageSize + x;
                images[at] = timbre == 1 ? 0.8f : -0.2f;
                images[at + plane] = stripes;
                images[at + 2 * plane] = (float)y / imageSize * 2 - 1;
            }
        }
        return new MicroBatch(captions, audio, images, keys);
    }
}
