"""Which trained drafter weights fit a target: SmolLM2's (specdec_lab/models/smol/weights) or the zoo's.

A set of weights is trained for one target. Its folder's ``card.json`` names that target by the
shape that matters (``fingerprint``): model type, width, depth, vocabulary. ``find_weights`` returns
the folder whose card matches the target in hand, so ``build_drafter("eagle", smollm2)`` and
``build_drafter("eagle", zoo_target)`` each get their own head, and any other target gets a clear
error naming the training script, never a head trained for another model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from .loading import ZOO_DIR

SMOL_WEIGHTS = Path(__file__).resolve().parent / "smol" / "weights"
CARD = "card.json"
DRAFT_VOCAB = SMOL_WEIGHTS / "draft_vocab.safetensors"
KINDS = ("eagle", "medusa", "early-exit", "distilled")


def fingerprint(model_or_config) -> dict:
    """The target's identity as far as a drafter is concerned: what its weights' shapes depend on."""
    cfg = getattr(model_or_config, "config", model_or_config)
    cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    get = (lambda k: cfg.get(k)) if isinstance(cfg, dict) else (lambda k: getattr(cfg, k, None))
    return {k: get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")}


def _zoo_fingerprint() -> dict | None:
    config = ZOO_DIR / "target" / "config.json"
    return fingerprint(json.loads(config.read_text())) if config.exists() else None


def find_weights(kind: str, target, required: bool = True) -> Path | None:
    """The folder of ``kind`` weights trained for ``target``; None when the target is the zoo's (its folders predate
    cards), or when nothing fits and ``required`` is False."""
    want = fingerprint(target)
    folder = SMOL_WEIGHTS / kind
    if (folder / CARD).exists() and json.loads((folder / CARD).read_text()).get("target") == want:
        return folder
    if want == _zoo_fingerprint() or not required:
        return None
    raise ValueError(
        f"no {kind} drafter is trained for this target ({want}); trained weights exist for SmolLM2-135M-Instruct "
        f"(python -m specdec_lab.models.smol.train) and the zoo target (python -m specdec_lab.models.zoo.train). "
        "Use a drafter that needs no training (prompt-lookup, lookahead, retrieval) or train one for this target.")


def trained_for_smollm2(target) -> bool:
    """Whether ``target`` is the model smol/weights were trained for (SmolLM2-135M-Instruct's shape)."""
    folder = SMOL_WEIGHTS / KINDS[0]
    return (folder / CARD).exists() and card(folder).get("target") == fingerprint(target)


def card(folder: Path) -> dict:
    return json.loads((Path(folder) / CARD).read_text())


def ranked_vocab(folder: Path = SMOL_WEIGHTS) -> torch.Tensor:
    """(K_max,) token ids, most frequent first: the draft_vocab.safetensors in ``folder`` (the trainer writes one per run)."""
    return load_file(str(Path(folder) / DRAFT_VOCAB.name))["token_ids"].long()


def draft_vocab(folder: Path, device=None) -> torch.Tensor | None:
    """The draft vocabulary a set of weights was trained with: the first K ids of the frequency-ranked list (None: all)."""
    k = card(folder).get("draft_vocab")
    if not k:
        return None
    return ranked_vocab()[:k].to(device)


DATASTORE = SMOL_WEIGHTS / "retrieval_answers.json.gz"


def retrieval_datastore() -> list[list[int]]:
    """SmolLM2's own greedy answers (token ids, one list per answer): the REST datastore shipped for SmolLM2."""
    import gzip

    return json.loads(gzip.decompress(DATASTORE.read_bytes()))
