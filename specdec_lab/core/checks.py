"""Every check of a run's arguments: both decoding loops, the CLI, the benchmark and the widgets call these.

What a drafter hands back is checked by :mod:`specdec_lab.drafters.checks`.

A check either returns the value in the form the engine uses or raises ValueError / TypeError with a
message that names the argument, what it got and what would be accepted. Nothing is silently clamped.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch

from .config import MAX_GAMMA, DecodeConfig
from .lm import check_causal_lm, max_context, sliding_window, vocab_size
from .sampling import SamplingConfig
from .validate import check_int, is_int  # check_int: re-exported, callers import it from here

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes seeds up to here


def check_gamma(gamma) -> int:
    """γ: the draft length, 1..MAX_GAMMA."""
    return check_int("gamma", gamma, 1, MAX_GAMMA)


def check_seed(seed) -> int:
    return check_int("seed", seed, 0, MAX_SEED)


def prompt_ids(input_ids, device) -> torch.Tensor:
    """Token ids in any of the forms users hold them -> a (n,) int64 tensor on ``device``.

    Accepts a list or 1-D tensor of ids, a (1, n) tensor, a tokenizer's output (a mapping with
    ``input_ids``, e.g. ``tokenizer("ROMEO:")``) and a ``tokenizers.Encoding`` (its ``.ids``).
    """
    if isinstance(input_ids, str):
        raise TypeError("input_ids must be token ids, not a string: tokenize the prompt first, e.g. tokenizer(text)")
    if isinstance(input_ids, Mapping):
        if "input_ids" not in input_ids:
            raise TypeError(f"input_ids is a mapping without an 'input_ids' entry (keys: {', '.join(map(str, input_ids))})")
        input_ids = input_ids["input_ids"]
    elif hasattr(input_ids, "ids") and not isinstance(input_ids, torch.Tensor):  # tokenizers.Encoding
        input_ids = input_ids.ids
    if isinstance(input_ids, (list, tuple)) and all(is_int(t) for t in input_ids):
        input_ids = [int(t) for t in input_ids]  # NumPy scalars (torch refuses a list of np.uint64) -> Python ints
        huge = [t for t in input_ids if not -2**63 <= t < 2**63]
        if huge:
            raise ValueError(f"input_ids hold token ids past the int64 range, e.g. {huge[:3]}; token ids index a "
                             "vocabulary [0, V)")
    try:
        ids = torch.as_tensor(input_ids)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"input_ids must be token ids (a list of ints or a tensor), got {type(input_ids).__name__}: {err}") from err
    if ids.dim() == 2:
        if ids.shape[0] != 1:
            raise ValueError(f"input_ids must hold one sequence (batch size 1), got shape {tuple(ids.shape)}")
        ids = ids[0]
    if ids.dim() != 1:
        raise ValueError(f"input_ids must be a 1-D sequence or a (1, n) tensor, got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise ValueError("the prompt is empty: give at least one token")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"input_ids must be integer token ids, got dtype {ids.dtype}")
    check_fits_int64(ids, "input_ids")
    return ids.to(device=device, dtype=torch.long)


def check_fits_int64(ids: torch.Tensor, what: str) -> None:
    """uint64 ids past 2**63 − 1 would wrap to negatives in int64 (and be reported as such): name their real value."""
    if ids.dtype == torch.uint64 and ids.numel() and bool((ids.double() >= 2.0**63).any()):  # uint64: no max() in torch
        bad = [v for v in ids.flatten().tolist() if v >= 2**63][:3]  # tolist gives the exact Python ints
        raise ValueError(f"{what} hold token ids past the int64 range, e.g. {bad}; token ids index a vocabulary [0, V)")


def check_reference(reference, vocab: int) -> list[int] | None:
    """``reference`` of generate_speculative (ids to compare the output with): None, or token ids in [0, vocab).

    Checked before the run, so a bad one fails at once instead of after the whole decode.
    """
    if reference is None:
        return None
    if type(reference).__module__ == "numpy" and hasattr(reference, "shape"):  # an ndarray: as its tensor
        reference = torch.as_tensor(reference)
    if isinstance(reference, str) or not isinstance(reference, (list, tuple, torch.Tensor)):
        raise TypeError(f"reference must be a list of token ids (e.g. the target's own greedy output, "
                        f"generate_autoregressive(...).token_ids), got {type(reference).__name__}: {reference!r:.60}")
    if isinstance(reference, torch.Tensor):
        if reference.dim() != 1 or reference.is_floating_point() or reference.is_complex() or reference.dtype == torch.bool:
            raise TypeError(f"reference must be a 1-D tensor of integer token ids, got {reference.dtype} of shape "
                            f"{tuple(reference.shape)}")
        check_fits_int64(reference, "reference")
        reference = reference.tolist()
    bad_types = [t for t in reference if not is_int(t)]
    if bad_types:
        raise TypeError(f"reference must hold int token ids, got {bad_types[0]!r} ({type(bad_types[0]).__name__})")
    reference = [int(t) for t in reference]
    outside = [t for t in reference if not 0 <= t < vocab]
    if outside:
        raise ValueError(f"reference holds token ids outside the target's vocabulary [0, {vocab}), e.g. {outside[:3]}")
    return reference


def check_token_range(ids: torch.Tensor, vocab: int, what: str, whose: str = "model's") -> None:
    """Token ids must index the vocabulary: out of range they would crash inside torch (a device assert on CUDA)."""
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        bad = ids[(ids < 0) | (ids >= vocab)][:3].tolist()
        raise ValueError(f"{what} hold token ids outside the {whose} vocabulary [0, {vocab}), e.g. {bad}")


def eos_ids(model, eos_token_id, vocab: int) -> tuple[int, ...]:
    """The ids that end generation: ``eos_token_id`` (an int or a list of ints), else the model's own."""
    source = "eos_token_id"
    if eos_token_id is None:
        gen_cfg = getattr(model, "generation_config", None)
        eos_token_id = getattr(gen_cfg, "eos_token_id", None)
        if eos_token_id is None:
            eos_token_id = getattr(model.config, "eos_token_id", None)
        source = "the model's eos_token_id"
    if eos_token_id is None:
        return ()
    values = [eos_token_id] if not isinstance(eos_token_id, (list, tuple)) else list(eos_token_id)
    for v in values:
        if not is_int(v):
            raise TypeError(f"{source} must be an int or a list of ints, got {eos_token_id!r}")
        if not 0 <= v < vocab:
            raise ValueError(f"{source} {v} is outside the vocabulary [0, {vocab}): no token could ever end the output")
    return tuple(int(v) for v in values)


def check_context(model, prompt_len: int, max_new_tokens: int, role: str = "target") -> None:
    """prompt + max_new_tokens must fit the model's context (for a sliding-window model: its window)."""
    limit = max_context(model)
    if limit is not None and prompt_len + max_new_tokens > limit:
        window = sliding_window(model)
        what = (f"attention window of {limit} tokens (a sliding-window model: its KV cache cannot be rolled back once "
                "tokens leave the window, so the whole sequence must fit in it)") if window == limit else f"context of {limit} tokens"
        raise ValueError(
            f"prompt ({prompt_len} tokens) + max_new_tokens ({max_new_tokens}) exceeds the {role}'s "
            f"{what}; shorten the prompt or lower max_new_tokens"
        )


def decode_config(model, input_ids, *, gamma: int, max_new_tokens, min_new_tokens, temperature, top_k, top_p, seed,
                  eos_token_id, role: str = "target") -> tuple[torch.Tensor, DecodeConfig]:
    """Validate one run's arguments against ``model``; return the prompt tensor and the frozen config."""
    check_causal_lm(model, role)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, 1)
    min_new_tokens = check_int("min_new_tokens", min_new_tokens, 0, max_new_tokens)
    seed = check_seed(seed)
    sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)  # validates the three, as Python numbers
    temperature, top_k, top_p = sampling.temperature, sampling.top_k, sampling.top_p
    ids = prompt_ids(input_ids, model.device)
    vocab = vocab_size(model)
    check_token_range(ids, vocab, "input_ids")
    check_context(model, ids.shape[0], max_new_tokens, role)
    cfg = DecodeConfig(gamma=gamma, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, temperature=temperature,
                       top_k=top_k, top_p=top_p, seed=seed, eos_ids=eos_ids(model, eos_token_id, vocab))
    warn_low_precision(model)
    return ids, cfg


_WARNED_DTYPES: set[str] = set()


def warn_low_precision(model) -> None:
    """Once per dtype and process: a bf16 / fp16 target's greedy speculative output can differ from its own greedy output.

    A forward over γ + 1 tokens and a forward over 1 token add the same numbers in another order; in
    bf16 the rounding differs enough to flip a near-tie argmax now and then (docs/precision.md).
    """
    dtype = getattr(model, "dtype", torch.float32)
    if dtype in (torch.float32, torch.float64) or str(dtype) in _WARNED_DTYPES:
        return
    _WARNED_DTYPES.add(str(dtype))
    warnings.warn(
        f"the target runs in {dtype}: batched (verification) and single-token forwards round differently, so greedy "
        "speculative output can leave the target's own greedy output at a near-tie. Use float32 for token-for-token "
        "equality; pass reference=... to generate_speculative to measure where it diverges (see docs/precision.md).",
        UserWarning, stacklevel=4,  # warn_low_precision < decode_config < generate_* < the caller
    )


def check_device(device) -> torch.device:
    """A device name or object -> torch.device, refusing unknown names and a CUDA device without CUDA."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available on this machine; use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} asked for, but MPS is not available on this machine; use 'cpu'")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} is not supported here; use 'cpu' or 'cuda'")
    return dev
