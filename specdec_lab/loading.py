"""Load models by one name: the bundled zoo (offline, never touching the network), a local folder, or a hub name.

    load_model("zoo:target")                 # bundled, from inside the package
    load_model("path/to/checkpoint")         # any local transformers folder
    load_model("Qwen/Qwen2.5-0.5B")          # the Hugging Face hub, where it can be reached
    target, drafter, tokenizer = load_pair("zoo:target", "zoo:drafter-distilled")
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from .models import check_causal_lm, check_same_tokenizer, check_same_vocabulary

ZOO_DIR = Path(os.environ.get("SPECDEC_LAB_ZOO", Path(__file__).resolve().parent / "zoo" / "models"))  # retrained zoos elsewhere
ZOO_PREFIX = "zoo:"
ZOO_MODELS = ("target", "drafter-small", "drafter-distilled")


def default_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve(name: str) -> tuple[str, bool]:
    """A model name -> (what from_pretrained gets, whether it is local)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a model name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name.startswith(ZOO_PREFIX):
        short = name[len(ZOO_PREFIX):]
        if short not in ZOO_MODELS:
            raise ValueError(f"unknown zoo model {name!r}; the zoo has: {', '.join(ZOO_PREFIX + m for m in ZOO_MODELS)}")
        folder = ZOO_DIR / short
        if not (folder / "config.json").exists():
            raise FileNotFoundError(f"the bundled model {name!r} is missing from {folder}; reinstall specdec_lab")
        return str(folder), True
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a transformers model folder (no config.json in it)")
        return str(path), True
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"no model folder at {name!r}")
    return name, False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def load_model(name: str, device: str | torch.device | None = None, dtype: torch.dtype = torch.float32):
    """(causal LM in eval mode on ``device``, its tokenizer). Bundled and local models load with no network access."""
    source, local = resolve(name)
    device = torch.device(device) if device is not None else default_device()
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local or _offline())
    except (OSError, ValueError) as err:
        if not local and _offline():
            raise OSError(f"cannot load {name!r}: the hub is offline here (HF_HUB_OFFLINE is set) and no local copy exists") from err
        raise OSError(f"cannot load {name!r}: not a local model folder, and the hub did not provide it ({err.__class__.__name__}: {err})") from err
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in notebooks and logs
    try:
        model = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=dtype, local_files_only=local or _offline())
    except ValueError as err:
        raise TypeError(f"{name!r} ({config.model_type}) is not a causal language model: {err}") from err
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    check_causal_lm(model, role=f"model {name!r}")
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local or _offline())
    return model.to(device).eval(), tokenizer


def load_pair(target: str = "zoo:target", drafter: str = "zoo:drafter-distilled", device=None):
    """(target, drafter, tokenizer) on one device, refusing a pair whose tokenizers differ."""
    target_model, target_tok = load_model(target, device)
    drafter_model, drafter_tok = load_model(drafter, target_model.device)
    check_same_tokenizer(target_tok, drafter_tok)
    check_same_vocabulary(target_model, drafter_model)
    return target_model, drafter_model, target_tok
