"""The two decoding loops: the autoregressive baseline and draft-then-verify.

Both take any transformers causal LM, keep its KV cache across steps (the
speculative loop rolls it back on rejection instead of rebuilding it), share
one logits -> distribution rule (:class:`config.DecodeConfig`), and return a
:class:`GenerationOutput` with the per-step trace. EOS, ``max_new_tokens`` and
``min_new_tokens`` mean the same in both, so at temperature 0 (and in float32)
their outputs are equal token for token.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .core import checks
from .core.config import DecodeConfig
from .drafters.adapt import DuckDrafter, as_drafter
from .core.types import Draft, DraftTree, Verdict
from .drafters import checks as contract
from .drafters.base import Drafter, WrappedDrafter
from .drafters.cascade import FirstNonEmpty
from .core.lm import CachedLM, check_same_vocabulary, vocab_size
from .core.sampling import sample
from .core.trace import GenerationOutput, Recorder
from .verifiers import Verifier, as_verifier


def generate_autoregressive(
    target,
    input_ids,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    min_new_tokens: int = 0,
    eos_token_id: int | list[int] | None = None,
    on_step=None,
) -> GenerationOutput:
    """The baseline: one target forward per new token, x_t ~ p(· | x_<t), with a KV cache.

    ``on_step(record)``, if given, sees each step's :class:`StepRecord` once it is recorded (to stream a view); it only
    observes, and what it raises ends the run."""
    ids, cfg = checks.decode_config(target, input_ids, gamma=0, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                    temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, eos_token_id=eos_token_id)
    generator = torch.Generator(device=target.device).manual_seed(cfg.seed)
    lm, trace, out = CachedLM(target), Recorder(target.device), []
    feed = ids  # the whole prompt first (prefill), then one token at a time
    while len(out) < cfg.max_new_tokens:
        trace.lap()
        token = sample(cfg.probs(lm.forward(feed, last_only=True), len(out))[0], generator)  # p: (V,)
        trace.record_plain(ids.shape[0] + len(out), int(token), trace.lap())
        out.append(int(token))
        if on_step is not None:
            on_step(trace.steps[-1])
        if out[-1] in cfg.eos_ids:
            break
        feed = token.view(1)
    settings = dict(method="autoregressive", max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                    top_p=top_p, seed=seed)
    return GenerationOutput(ids.tolist(), out, trace.steps, trace.stats(lm.forward_count, 0, out), settings)


def generate_speculative(
    target,
    drafter,
    input_ids,
    gamma: int = 4,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    verifier=None,
    min_new_tokens: int = 0,
    eos_token_id: int | list[int] | None = None,
    reference: list[int] | None = None,
    keep_rows: bool = False,
    on_step=None,
) -> GenerationOutput:
    """Draft, then verify (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023, Algorithm 2).

    Each step (see :func:`speculative_loop`):
      Step 1. The drafter proposes a chain of γ' = min(γ, tokens left − 1) tokens x_1..x_γ' with q_1..q_γ'
              (or, for a tree verifier, a tree at most γ' deep).
      Step 2. ONE target forward over [last token, x_1..x_γ'] gives p_1..p_γ'+1.
      Step 3. The verifier keeps an accepted prefix of n drafts and adds one token of its own.
      Step 4. The target's KV cache keeps only the accepted drafts; the drafter observes the verdict.
    ``verifier=None`` is speculative sampling, which at temperature 0 is exactly greedy matching.
    ``input_ids`` may be token ids or a tokenizer's output. ``reference``: token ids to compare the
    output with (the target's own greedy output), filling ``stats.diverged_at``. ``keep_rows=True`` keeps
    each step's full p and q rows in its record (``StepRecord.rows``, V floats per row) for
    :func:`specdec_lab.lab.replay.replay`. ``on_step(record)``, if given, sees each step's :class:`StepRecord` once
    it is recorded (to stream a view); it only observes, and what it raises ends the run.
    """
    ids, cfg = checks.decode_config(target, input_ids, gamma=checks.check_gamma(gamma), max_new_tokens=max_new_tokens,
                                    min_new_tokens=min_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                    seed=seed, eos_token_id=eos_token_id)
    drafter, verifier = as_drafter(drafter), as_verifier(verifier)
    _check_pair(target, drafter, verifier, ids, cfg)
    reference = checks.check_reference(reference, vocab_size(target))  # before the run, not after it
    with claimed(drafter):  # from reset to the last observe, this run alone changes the drafter's state
        drafter.reset()
        forwards_before = drafter.forward_count
        lm, trace = CachedLM(target), Recorder(target.device, keep_rows)
        new_ids = speculative_loop(lm, drafter, verifier, ids, cfg, trace, on_step)
        drafter_forwards = drafter.forward_count - forwards_before  # read while the run still holds the drafter
    settings = dict(method="speculative", drafter=drafter.name, verifier=verifier.name,
                    gamma=gamma, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    stats = trace.stats(lm.forward_count, drafter_forwards, new_ids, reference)
    return GenerationOutput(ids.tolist(), new_ids, trace.steps, stats, settings)


def speculative_loop(lm: CachedLM, drafter: Drafter, verifier: Verifier, ids: torch.Tensor, cfg: DecodeConfig,
                     trace: Recorder, on_step=None) -> list[int]:
    """The algorithm itself, on checked arguments; returns the new tokens.

    Invariant: the target's cache holds every token of the sequence except the last one (the root).
    """
    generator = torch.Generator(device=lm.device).manual_seed(cfg.seed)
    vocab = vocab_size(lm.model)
    if ids.shape[0] > 1:  # prefill all but the last token; heads that read hidden states get the prompt's
        every_row = drafter.reads_hidden or drafter.reads_scores
        prefill = lm.forward(ids[:-1], last_only=not every_row, hidden=drafter.reads_hidden)
        if drafter.reads_scores:  # token recycling: the prompt's rows of its top-k table
            drafter.observe_scores(ids[:-1].clone(), prefill[0] if drafter.reads_hidden else prefill)  # (len − 1, V)
        if drafter.reads_hidden:
            drafter.observe(None, prefill[1])  # (len − 1, d)
    prompt_len = ids.shape[0]
    while ids.shape[0] - prompt_len < cfg.max_new_tokens:
        n_new, past = ids.shape[0] - prompt_len, lm.length
        trace.lap()
        # Step 1: the drafter proposes γ' tokens (a chain is a tree with one branch); a side branch may ride along
        tree = draft(drafter, verifier, ids, min(cfg.gamma, cfg.max_new_tokens - n_new - 1), cfg, n_new, generator, vocab)
        side = side_inputs(drafter, ids, lm)
        draft_s = trace.lap()
        # Step 2: ONE target forward scores the root and every drafted node: p_1..p_γ'+1
        scored = lm.score(ids[-1:], tree.tokens, tree.parents, side, hidden=drafter.reads_hidden)
        p = cfg.probs(scored.logits, n_new + tree.row_depths())  # (N+1, V), row r predicts new token n_new + depth
        # Step 3: the verifier keeps an accepted prefix (a path in the tree) and adds one token of the target's own
        verdict = contract.checked_verdict(verifier, verifier.verify_step(tree, p, generator), tree, p)
        emitted = _cut_after_eos(verdict.tokens, cfg.eos_ids)
        # Step 4: the cache keeps the root and the accepted path; the drafter observes the verdict
        lm.keep(past + 1, [past + 1 + j for j in verdict.path])
        if drafter.reads_scores:  # every scored token, rejected branches included: (N + 1,) and (N + 1, V)
            drafter.observe_scores(torch.cat([ids[-1:], tree.tokens]), scored.logits)
        kept_rows = [0] + [j + 1 for j in verdict.path]  # the root and the accepted drafts stay in the sequence
        drafter.observe(_copy(verdict), None if scored.hidden is None else scored.hidden[kept_rows])  # (n + 1, d)
        trace.record(ids.shape[0], tree, verdict, p, emitted, draft_s, trace.lap())
        ids = torch.cat([ids, torch.tensor(emitted, dtype=torch.long, device=ids.device)])
        if on_step is not None:  # observe only: a view streams the step
            on_step(trace.steps[-1])
        if side is not None:
            drafter.observe_side(scored.side_logits, ids.clone())  # lookahead: Jacobi update of the window, n-gram harvest
        if len(emitted) < len(verdict.tokens) or emitted[-1] in cfg.eos_ids:
            break
    return ids[prompt_len:].tolist()


def draft(drafter: Drafter, verifier: Verifier, ids: torch.Tensor, gamma: int, cfg: DecodeConfig, n_new: int, generator,
          vocab: int) -> DraftTree:
    """Step 1: a chain of at most γ tokens for a linear verifier, or a tree within its branching for a tree verifier.

    The drafter gets a copy of ``ids``: one that writes into it cannot change the loop's sequence.
    """
    to_probs = lambda logits, i: cfg.probs(logits, n_new + i, who="drafter")  # noqa: E731 - q is built like p
    if gamma == 0:  # the last token of the output: nothing to draft
        return DraftTree(tokens=ids.new_empty(0), parents=ids.new_empty(0))
    if verifier.tree:
        branching = verifier.branching_for(gamma)
        tree = drafter.propose_tree(ids.clone(), branching, to_probs, generator)
        return contract.drafted_tree(drafter, tree, ids, branching, vocab)
    chain = contract.drafted_chain(drafter, drafter.propose(ids.clone(), gamma, to_probs, generator), ids, gamma, vocab)
    return DraftTree.chain(_drop_after_eos(chain, cfg.eos_ids))


def side_inputs(drafter: Drafter, ids: torch.Tensor, lm: CachedLM):
    """The drafter's side-branch tokens for this step, checked; None without one or past the model's context."""
    return contract.side_branch(drafter, drafter.side_inputs(ids.clone()), ids, lm.model) if drafter.side_branch else None


def _check_pair(target, drafter: Drafter, verifier: Verifier, ids: torch.Tensor, cfg: DecodeConfig) -> None:
    """The drafter must fit the target (vocabulary, device, context) and the verifier (trees need branching)."""
    if drafter.model is not None:
        check_same_vocabulary(target, drafter.model)
        checks.check_context(drafter.model, ids.shape[0], cfg.max_new_tokens, "drafter")
        if drafter.model.device != target.device:
            raise ValueError(f"drafter is on {drafter.model.device} but the target is on {target.device}; put both on one device")
    elif drafter.vocab_size not in (None, vocab_size(target)):
        raise ValueError(f"drafter vocabulary ({drafter.vocab_size}) differs from the target's ({vocab_size(target)})")
    if verifier.tree and not drafter.branches:
        raise ValueError(
            f"verifier {verifier.name!r} checks a tree of drafts, but drafter {drafter.name!r} cannot branch "
            "(it has no propose_tree); pick a linear verifier or a drafter that branches"
        )


def _drop_after_eos(chain: Draft, eos_ids: tuple[int, ...]) -> Draft:
    """Drafted tokens after an EOS can never be emitted; do not make the target score them."""
    if not eos_ids or len(chain) == 0:
        return chain
    is_eos = torch.isin(chain.tokens, torch.tensor(eos_ids, device=chain.tokens.device))
    return chain.truncated(int(is_eos.to(torch.int64).argmax()) + 1) if bool(is_eos.any()) else chain


def _cut_after_eos(tokens: list[int], eos_ids: tuple[int, ...]) -> list[int]:
    """Cut a list of emitted tokens after the first EOS."""
    for i, t in enumerate(tokens):
        if t in eos_ids:
            return tokens[: i + 1]
    return tokens


_claims_lock = threading.Lock()
_claims: dict[int, str] = {}  # id() of a drafter (or a part of one) that a run is using -> that run's thread name


@contextmanager
def claimed(drafter: Drafter) -> Iterator[None]:
    """Hold ``drafter`` and every stateful part of it for one run; refuse it while another run holds it.

    A drafter keeps the state of ONE sequence (a KV cache, the target's features, a window), changed by
    every propose and observe. Two runs at once on one drafter object (two threads, a playground's worker
    beside a notebook cell) would each roll back and extend the other's state, so the second is refused.
    Drafters that keep no state between calls (their class keeps Drafter's no-op reset and observe hooks:
    prompt lookup, retrieval, whose datastore the registry shares) serve any number of runs.
    """
    parts = list({id(part): part for part in _parts(drafter) if _keeps_run_state(part)}.values())  # each once
    me = threading.current_thread().name
    with _claims_lock:
        busy = next((part for part in parts if id(part) in _claims), None)
        if busy is not None:
            raise RuntimeError(
                f"drafter {getattr(busy, 'name', type(busy).__name__)!r} ({type(busy).__name__} object) is already "
                f"drafting for another run (thread {_claims[id(busy)]!r}); a drafter holds the state of one sequence, "
                "so two runs at once would corrupt each other: build one drafter per thread "
                "(call build_drafter(name, target) again, or construct a new one)")
        _claims.update((id(part), me) for part in parts)
    try:
        yield
    finally:
        with _claims_lock:
            for part in parts:
                del _claims[id(part)]


def _parts(drafter) -> Iterator:
    """The drafter and every drafter (or third party's object) inside it: what its run changes."""
    yield drafter
    if isinstance(drafter, WrappedDrafter):
        inside = [drafter.inner]
    elif isinstance(drafter, DuckDrafter):
        inside = [drafter.obj]
    else:
        inside = drafter.drafters if isinstance(drafter, FirstNonEmpty) else []
    for part in inside:
        yield from _parts(part)


def _keeps_run_state(part) -> bool:
    """Whether a run changes ``part``: a drafter that overrides a hook that may change state, or an object having one.

    A DuckDrafter is made afresh for each run and is never claimed; the third party's object inside it is.
    """
    hooks = ("reset", "observe", "observe_side", "observe_scores")
    if isinstance(part, DuckDrafter):
        return False
    if isinstance(part, Drafter):
        return any(getattr(type(part), hook) is not getattr(Drafter, hook) for hook in hooks)
    return any(callable(getattr(part, hook, None)) for hook in hooks)


def _copy(verdict: Verdict) -> Verdict:
    """The verdict a drafter observes: its own copy, so a drafter that edits it cannot change what the loop emits
    and records (the ids it drafts from are copies too: see :func:`draft` and :func:`side_inputs`)."""
    return dataclasses.replace(verdict, tokens=list(verdict.tokens), path=list(verdict.path),
                               decisions=list(verdict.decisions), next_dist=verdict.next_dist.clone())
