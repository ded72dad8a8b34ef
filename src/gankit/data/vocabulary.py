"""Reading a caption in the words a text -> image run was trained on.

A GAN-INT-CLS generator (Reed et al. 2016) learns to draw from the sentence embeddings of its
training captions only. A word that never appeared in them ("jeans" where training said "pants" and
"trousers") moves the embedding off the region G learnt, and G draws something else: measured on
the built-in set, class accuracy falls from 74 % on seen wordings to 40 % on new ones, although the
encoder itself knows the words are near (the nearest training caption of a new wording has the
right class 97 % of the time: docs/BENCHMARKS.md, "Text -> image").

So, before embedding, each word the training captions never used is *rewritten*: replaced by one of
the training vocabulary's words nearest it in the sentence encoder's space (all-MiniLM-L6-v2, a
word embedded alone), or dropped, whichever keeps the whole caption's embedding closest to the
original's. The sentence decides, not the word alone: "trainers" is nearest "shoe" as a word, and
"photo" nearest "shirt", but "photo of a purse" is closer to "of a handbag" than to "shirt of a
handbag". Words are taken one at a time, left to right, each choice seeing the earlier ones. A
caption whose words are all known is left as it is, and the user is shown what was read
(``gankit sample --text`` prints it). ``nearest`` goes one step further for a caption that had
unknown words: G is given the training caption nearest the rewritten one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
NEIGHBOURS = 5  # training words tried in place of an unknown one (besides dropping it)
FLOOR = 0.35  # ... each at least this cosine to it as a word (all-MiniLM-L6-v2: "gown"/"dress" 0.71)

Encode = Callable[[Sequence[str]], Tensor]  # texts -> (N, dim) L2-normalised embeddings


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased (the encoder is uncased)."""
    return WORD.findall(text.lower())


def vocabulary(captions: Sequence[str]) -> list[str]:
    """The distinct words of ``captions``, sorted."""
    return sorted({w for c in dict.fromkeys(captions) for w in words(c)})


@dataclass(frozen=True)
class Reading:
    """How a caption was read: ``text`` as given, ``read_as`` what G is given, each unknown word
    with its replacement ('' where it was dropped), and (``--unknown-words nearest``) the rewritten
    caption ``via`` whose nearest training caption ``read_as`` is."""

    text: str
    read_as: str
    replaced: tuple[tuple[str, str], ...] = ()
    via: str = ""

    def describe(self) -> str:
        """'tiny -> small, photo dropped', or '' when nothing was replaced."""
        words = ", ".join(f"{w} -> {r}" if r else f"{w} dropped" for w, r in self.replaced)
        return words + (f"; then the training caption nearest {self.via!r}" if self.via else "")


def _tidy(text: str) -> str:
    """Spaces collapsed and none before punctuation (after a word was dropped)."""
    return re.sub(r"\s+([,.:;!?])", r"\1", re.sub(r"\s+", " ", text)).strip(" ,.:;")


class KnownWords:
    """Rewrites captions into ``vocab`` (see the module docstring). ``encode`` embeds texts
    (``gankit.data.text_encoder.encode``, or any function giving L2-normalised rows)."""

    def __init__(self, vocab: Sequence[str], encode: Encode) -> None:
        self.vocab = list(vocab)
        self.known = set(self.vocab)
        self.encode = encode
        self._vocab_emb: Tensor | None = None
        self._near: dict[str, list[str]] = {}

    def unknown(self, text: str) -> list[str]:
        """The words of ``text`` that the vocabulary lacks, in order."""
        return [w for w in words(text) if w not in self.known]

    def _neighbours(self, unknown: list[str]) -> None:
        """Fill ``_near`` for these words: the vocabulary's NEIGHBOURS nearest, at cosine >= FLOOR."""
        new = sorted(set(unknown) - set(self._near))
        if not new or not self.vocab:
            self._near.update({w: [] for w in new})
            return
        if self._vocab_emb is None:
            self._vocab_emb = self.encode(self.vocab)
        cos = self.encode(new) @ self._vocab_emb.T  # (new, V)
        top, idx = cos.topk(min(NEIGHBOURS, len(self.vocab)), dim=1)
        for w, values, rows in zip(new, top.tolist(), idx.tolist(), strict=True):
            self._near[w] = [self.vocab[j] for v, j in zip(values, rows, strict=True) if v >= FLOOR]

    def read(self, captions: Sequence[str]) -> list[Reading]:
        """Each caption's ``Reading``. All captions advance together, one unknown word per round, so
        the encoder sees one batch of candidates per round."""
        texts = [c.lower() for c in captions]
        replaced: list[list[tuple[str, str]]] = [[] for _ in captions]
        todo = [i for i, t in enumerate(texts) if self.unknown(t)]
        target = dict(zip(todo, self.encode([texts[i] for i in todo]), strict=True)) if todo else {}
        while todo:
            spans: dict[int, re.Match[str]] = {}
            for i in todo:
                spans[i] = next(m for m in WORD.finditer(texts[i]) if m.group() not in self.known)
            self._neighbours([m.group() for m in spans.values()])
            cands: list[tuple[int, str, str]] = []  # (caption, replacement, candidate text)
            for i, m in spans.items():
                t = texts[i]
                for r in [*self._near[m.group()], ""]:
                    cands.append((i, r, _tidy(t[:m.start()] + r + t[m.end():])))
            emb = self.encode([c for _, _, c in cands])
            best: dict[int, tuple[float, str, str]] = {}
            for (i, r, text), e in zip(cands, emb, strict=True):
                score = float(e @ target[i])
                if i not in best or score > best[i][0]:
                    best[i] = (score, r, text)
            for i, (_, r, text) in best.items():
                replaced[i].append((spans[i].group(), r))
                texts[i] = text
            todo = [i for i in todo if self.unknown(texts[i])]
        return [Reading(c, t if r else c, tuple(r)) for c, t, r in zip(captions, texts, replaced, strict=True)]


def nearest(readings: Sequence[Reading], bank: tuple[Sequence[str], Tensor], encode: Encode) -> list[Reading]:
    """Each reading whose words were rewritten, moved on to the training caption nearest it (cosine
    of the embeddings; ``bank`` the distinct training captions and their embeddings). A rewritten
    caption can still be worded as no training caption is ("shoe" alone where training said "running
    shoe"); its nearest training caption is one G has learnt, at the price of any attribute the
    encoder sees as near ("top left" and "top right")."""
    todo = [i for i, r in enumerate(readings) if r.replaced]
    if not todo:
        return list(readings)
    texts, emb = bank
    query = encode([readings[i].read_as for i in todo])  # (n, dim), unit rows
    best = (query @ emb.float().T).argmax(1).tolist()  # the bank's rows are unit vectors too
    out = list(readings)
    for i, j in zip(todo, best, strict=True):
        r = readings[i]
        out[i] = Reading(r.text, texts[j], r.replaced, r.read_as)
    return out


class CaptionReader:
    """Reads captions for G as ``how`` says (text.unknown_words): 'rewrite' into ``vocab``;
    'nearest' that, then the nearest caption of ``bank()`` (the distinct training captions and
    their embeddings, loaded on first need) for those rewritten; 'keep' (or no vocabulary known) as
    given. Each distinct caption is read once: the scores read a split for G and again for the
    shuffled-caption baseline."""

    def __init__(self, vocab: Sequence[str] | None, how: str, encode: Encode,
                 bank: Callable[[], tuple[Sequence[str], Tensor]] | None = None) -> None:
        self.how = how if vocab else "keep"
        self.known = KnownWords(vocab, encode) if vocab and how != "keep" else None
        self.encode = encode
        self._load_bank = bank if how == "nearest" else None
        self._bank: tuple[Sequence[str], Tensor] | None = None
        self._read: dict[str, Reading] = {}

    def read(self, captions: Sequence[str]) -> list[Reading]:
        """Each caption's ``Reading``, in order."""
        new = [c for c in dict.fromkeys(captions) if c not in self._read]
        if self.known is None:
            readings = [Reading(c, c) for c in new]
        else:
            readings = self.known.read(new)
            if self._load_bank is not None and any(r.replaced for r in readings):
                if self._bank is None:
                    self._bank = self._load_bank()
                readings = nearest(readings, self._bank, self.encode)
        self._read.update(zip(new, readings, strict=True))
        return [self._read[c] for c in captions]


__all__ = ["FLOOR", "NEIGHBOURS", "CaptionReader", "KnownWords", "Reading", "nearest", "vocabulary", "words"]
