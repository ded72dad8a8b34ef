"""Reading a caption in the training captions' words (``gankit.data.vocabulary``): the choice by the
whole sentence's embedding, against a hand-made encoder whose answers are known, then the real
encoder on the built-in set's held-out words."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from gankit.data.vocabulary import FLOOR, CaptionReader, KnownWords, Reading, vocabulary, words

# A bag-of-words encoder: each word a fixed vector, a text the normalised sum of its words'.
AXES = ("bag", "dress", "small", "dark", "left", "a", "other")
VECTORS = {w: torch.eye(len(AXES))[i] for i, w in enumerate(AXES)}
VECTORS |= {
    "a": 0.1 * VECTORS["a"],  # an article weighs little in a sentence
    "purse": torch.tensor([0.9, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0]),  # a bag, a little to the left
    "gown": torch.tensor([0.2, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "tiny": torch.tensor([0.0, 0.0, 0.95, 0.0, 0.0, 0.0, 0.0]),
    "zzqx": VECTORS["other"],  # near no known word: dropped
    "leftish": torch.tensor([0.6, 0.0, 0.0, 0.0, 0.8, 0.0, 0.0]),  # as a word nearest "left", then "bag"
}


class BagOfWords:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        rows = [sum((VECTORS[w] for w in words(t)), torch.zeros(len(AXES))) for t in texts]
        return torch.nn.functional.normalize(torch.stack(rows), dim=1)


VOCAB = ["a", "bag", "dark", "dress", "left", "small"]


def test_words_and_the_vocabulary_are_lower_case_and_distinct() -> None:
    assert words("A T-shirt, top-left: it's SMALL!") == ["a", "t-shirt", "top-left", "it's", "small"]
    assert vocabulary(["a bag", "A dark bag", "a bag"]) == ["a", "bag", "dark"]


def test_known_words_leave_the_caption_alone_without_calling_the_encoder() -> None:
    enc = BagOfWords()
    r = KnownWords(VOCAB, enc).read(["A small dark bag"])
    assert r == [Reading("A small dark bag", "A small dark bag")]
    assert enc.calls == []


def test_each_unknown_word_becomes_the_known_word_nearest_in_meaning() -> None:
    r = KnownWords(VOCAB, BagOfWords()).read(["a tiny purse", "a dark gown", "a bag"])
    assert [x.read_as for x in r] == ["a small bag", "a dark dress", "a bag"]
    assert r[0].replaced == (("tiny", "small"), ("purse", "bag"))
    assert r[0].describe() == "tiny -> small, purse -> bag"


def test_a_word_near_nothing_is_dropped_and_the_text_tidied() -> None:
    r = KnownWords(VOCAB, BagOfWords()).read(["a zzqx dark bag"])[0]
    assert r.read_as == "a dark bag"
    assert KnownWords(VOCAB, BagOfWords()).read(["zzqx, a bag"])[0].read_as == "a bag"  # no stray comma
    assert r.replaced == (("zzqx", ""),) and r.describe() == "zzqx dropped"


def test_the_sentence_decides_between_the_neighbours() -> None:
    # "leftish" is nearer "left" (0.8) than "bag" (0.6) as a word; both pass the floor. In "a dark
    # leftish" the sentence with "left" is nearer the original (cosines 0.88 against 0.80 for "bag").
    enc = BagOfWords()
    assert KnownWords(VOCAB, enc).read(["a dark leftish"])[0].read_as == "a dark left"
    # with "bag" already in the caption, the sum a + bag + leftish points more to "bag" than to "left"
    orig = enc(["a bag leftish"])[0]
    left, bag, dropped = enc(["a bag left", "a bag bag", "a bag"])
    best = max((float(left @ orig), "a bag left"), (float(bag @ orig), "a bag bag"), (float(dropped @ orig), "a bag"))
    assert KnownWords(VOCAB, enc).read(["a bag leftish"])[0].read_as == best[1]
    assert FLOOR < 0.6  # both neighbours of "leftish" are tried


def test_keep_or_no_vocabulary_gives_the_captions_as_they_are() -> None:
    enc = BagOfWords()
    assert CaptionReader(VOCAB, "keep", enc).read(["a tiny purse"]) == [Reading("a tiny purse", "a tiny purse")]
    assert CaptionReader(None, "rewrite", enc).read(["a tiny purse"])[0].read_as == "a tiny purse"
    assert enc.calls == []


HAS_TEXT = all(importlib.util.find_spec(m) is not None for m in ("all_minilm_l6_v2", "transformers"))


@pytest.mark.skipif(not HAS_TEXT, reason="the text extra is not installed (pip install 'gankit[text]')")
def test_the_real_encoder_reads_the_held_out_words_as_their_training_synonyms(tmp_path_factory: pytest.TempPathFactory) -> None:
    import re

    from gankit.data.captioned import (
        BRIGHTNESS_WORDS,
        CLASS_WORDS,
        POSITION_PHRASES,
        POSITION_SHORT,
        SIZE_WORDS,
        TEMPLATES,
    )
    from gankit.data.text_encoder import encode

    # the training captions' words: the templates' own and the seen words they are filled with
    seen = [w for group in (*CLASS_WORDS, *SIZE_WORDS, *BRIGHTNESS_WORDS) for w in group[0]]
    templates = [re.sub(r"\{\w+\}", " ", t) for t in TEMPLATES]
    vocab = vocabulary([*templates, "an", *seen, *(p for pair in POSITION_PHRASES for p in pair), *POSITION_SHORT])
    cache = Path(tmp_path_factory.mktemp("enc"))
    r = KnownWords(vocab, lambda t: encode(t, cache)).read([
        "a tiny shadowy pair of jeans on the right", "at the bottom sits a brilliant huge gown",
        "photo of a purse: large, dark, centre"])
    assert r[0].read_as == "a small dark pair of pants on the right"
    assert {"bright", "big", "dress"} <= set(words(r[1].read_as)) and "sits" not in r[1].read_as
    assert "handbag" in words(r[2].read_as) and set(words(r[2].read_as)) <= set(vocab)


def test_nearest_moves_only_rewritten_captions_to_the_nearest_training_caption() -> None:
    enc = BagOfWords()
    bank_texts = ["a small bag", "a dark dress", "a dark bag left"]
    bank = (bank_texts, enc(bank_texts))
    r = CaptionReader(VOCAB, "nearest", enc, lambda: bank).read(["a tiny purse", "a dark bag"])
    # "a tiny purse" -> "a small bag" (rewritten), which is in the bank; "a dark bag" had no unknown
    # word, so it stays as typed (a held-out combination is not moved onto another one)
    assert r[0] == Reading("a tiny purse", "a small bag", (("tiny", "small"), ("purse", "bag")), "a small bag")
    assert r[1] == Reading("a dark bag", "a dark bag")
    r = CaptionReader(VOCAB, "nearest", enc, lambda: bank).read(["a dark gown leftish"])[0]
    assert r.via == "a dark dress left" and r.read_as == "a dark dress"  # not in the bank: its nearest
    assert r.describe().endswith("then the training caption nearest 'a dark dress left'")


def test_a_reader_reads_each_caption_once_and_loads_the_bank_only_when_needed() -> None:
    enc, loads = BagOfWords(), []
    bank_texts = ["a small bag", "a dark dress"]

    def bank() -> tuple[list[str], torch.Tensor]:
        loads.append(1)
        return bank_texts, enc(bank_texts)

    reader = CaptionReader(VOCAB, "nearest", enc, bank)
    assert reader.read(["a dark bag", "a small bag"])[0].read_as == "a dark bag" and loads == []  # all known
    enc.calls.clear()
    first = reader.read(["a tiny purse", "a tiny purse"])
    assert first[0] == first[1] and first[0].read_as == "a small bag" and loads == [1]
    calls = len(enc.calls)
    assert reader.read(["a tiny purse", "a dark bag"])[0] == first[0]  # the same reading, from memory
    assert len(enc.calls) == calls and loads == [1]
