"""Trains a small SentencePiece unigram model (T5 layout: pad 0, eos 1, unk 2, no bos; nmt_nfkc normalizer) with
Debian's python3-sentencepiece, and records the reference token ids for a set of prompts."""
import io
import os
import random

import numpy as np
import sentencepiece as spm

from common import FIXTURES, save_fixture

random.seed(5)
genres = ["jazz", "rock", "ambient", "classical", "hip hop", "folk", "electronic", "blues", "reggae", "metal"]
moods = ["calm", "energetic", "melancholic", "joyful", "dark", "dreamy", "tense", "playful"]
instruments = ["piano", "acoustic guitar", "electric guitar", "violin", "cello", "synthesizer", "drums", "bass",
               "flute", "trumpet", "saxophone", "organ", "harp", "choir", "strings"]
templates = [
    "A {mood} {genre} piece with {a} and {b}.",
    "{genre} track featuring a {mood} {a} melody over {b}.",
    "This is a {mood} song in the style of {genre}, played on {a}.",
    "Slow {genre} with {a}, {b} and soft percussion at {bpm} BPM.",
    "An instrumental {genre} tune: {a} leads, {b} accompanies; the mood is {mood}.",
]
lines = []
for _ in range(3000):
    a, b = random.sample(instruments, 2)
    lines.append(random.choice(templates).format(mood=random.choice(moods), genre=random.choice(genres), a=a, b=b,
                                                 bpm=random.randint(60, 180)))
lines += ["Café crème, naïve façade — déjà vu.", "ﬁne ＡＢＣ ①②③ Ⅻ", "Tabs\tand\nnewlines   and   spaces"]

model = io.BytesIO()
spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=200,
                               model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                               character_coverage=0.9995, normalization_rule_name="nmt_nfkc")
path = os.path.join(FIXTURES, "tokenizer", "spiece.model")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "wb") as f:
    f.write(model.getvalue())

sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
prompts = [
    "A calm jazz piece with piano and double bass.",
    "  Energetic   ROCK track,\tdistorted guitars!  ",
    "Café ﬁne ＡＢＣ ① déjà vu",
    "ambient drone 🎹🎸 with 合成器 pads",
    "",
    "   ",
    "x",
    "Slow blues at 72 BPM; harmonica? Yes — and a walking bass line.",
]
tensors, meta = {}, {}
for i, prompt in enumerate(prompts):
    ids = sp.encode(prompt) + [sp.eos_id()]
    tensors[f"prompt{i}.ids"] = np.array(ids, dtype=np.int32)
    meta[f"prompt{i}.text"] = prompt
    meta[f"prompt{i}.pieces"] = "|".join(sp.encode(prompt, out_type=str))
save_fixture("tokenizer", tensors, meta)
