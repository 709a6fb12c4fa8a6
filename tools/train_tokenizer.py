"""Trains a T5-layout SentencePiece unigram tokenizer (pad 0, eos 1, unk 2, no bos; nmt_nfkc) on music-caption text.

Usage: /usr/bin/python3 tools/train_tokenizer.py --vocab 1000 --out spiece.model [--corpus captions.txt]
Without --corpus it composes captions from genre, instrument and texture vocabularies.
"""
import argparse
import io
import random

import sentencepiece as spm

GENRES = ["jazz", "rock", "ambient", "classical", "hip hop", "folk", "electronic", "blues", "reggae", "metal", "latin",
          "pop", "funk", "soul", "country", "techno", "house", "orchestral", "lo-fi", "cinematic"]
INSTRUMENTS = ["piano", "acoustic guitar", "electric guitar", "violin", "cello", "synthesizer", "drums", "bass guitar",
               "flute", "trumpet", "saxophone", "organ", "harp", "choir", "strings", "marimba", "clarinet", "trombone",
               "percussion", "electric piano", "pad", "bells", "accordion", "banjo"]
TEXTURES = ["melody", "chords", "bass line", "percussion", "arpeggios", "counter-melody", "drone", "riff"]
TEMPLATES = [
    "A {genre} piece with {a} and {b}.",
    "{genre} track featuring {a} playing the {t} over {b}.",
    "Instrumental {genre}: {a} leads while {b} plays the {t}.",
    "This {genre} song combines {a}, {b} and a steady {t}.",
    "Music in the style of {genre} with a {t} on {a}.",
    "The recording features {a} and {b} in a {genre} arrangement.",
]


def captions(count, seed):
    rng = random.Random(seed)
    for _ in range(count):
        a, b = rng.sample(INSTRUMENTS, 2)
        yield rng.choice(TEMPLATES).format(genre=rng.choice(GENRES), a=a, b=b, t=rng.choice(TEXTURES))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--corpus", help="one caption per line")
    args = parser.parse_args()
    lines = open(args.corpus, encoding="utf-8").read().splitlines() if args.corpus else list(captions(20000, 0))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=args.vocab,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   character_coverage=1.0, normalization_rule_name="nmt_nfkc", hard_vocab_limit=False)
    with open(args.out, "wb") as f:
        f.write(model.getvalue())


if __name__ == "__main__":
    main()
