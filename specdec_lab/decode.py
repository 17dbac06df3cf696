"""The two decoding loops: the autoregressive baseline and draft-then-verify.

Both take any transformers causal LM, keep its KV cache across steps (the
speculative loop rolls it back on rejection instead of rebuilding it), share
one logits -> distribution rule, and return a :class:`GenerationOutput` with
the per-step trace. EOS, ``max_new_tokens`` and ``min_new_tokens`` mean the
same in both, so at temperature 0 their outputs are equal token for token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .drafters.base import Draft, DraftTree, as_drafter
from .models import CachedLM, check_causal_lm, check_same_vocabulary, max_context, vocab_size, with_side_branch
from .sampling import SamplingConfig, check_finite_logits, one_hot, probs_from_logits, sample
from .tree import check_parents, depths
from .trace import BONUS, CORRECTED, PLAIN, GenerationOutput, StepRecord, summarize, top_at_stop
from .verifiers import get_verifier

MAX_GAMMA = 64  # a longer draft than this is always slower than decoding alone


@dataclass(frozen=True)
class TokenRule:
    """Logits for the i-th new token -> the distribution it is drawn from.

    The sampling config (temperature, top-k, top-p), plus the EOS mask that
    ``min_new_tokens`` needs: while fewer than min_new_tokens tokens exist,
    EOS gets probability 0 (as transformers' MinNewTokensLengthLogitsProcessor does).
    """

    sampling: SamplingConfig
    eos_ids: tuple[int, ...]  # token ids that end generation
    min_new_tokens: int  # EOS is impossible before this many new tokens

    def probs(self, logits: torch.Tensor, first_index: int | torch.Tensor, who: str = "target") -> torch.Tensor:
        """(T, V) logits whose rows predict new tokens first_index, first_index+1, ... -> (T, V).

        ``first_index`` may instead be a (T,) tensor with each row's new-token index (tree rows).
        """
        check_finite_logits(logits, who)
        if isinstance(first_index, int):
            if first_index >= self.min_new_tokens:  # the common case: no EOS mask
                return probs_from_logits(logits, self.sampling)
            first_index = first_index + torch.arange(logits.shape[0])
        masked = (first_index < self.min_new_tokens).to(logits.device)  # (T,)
        if bool(masked.any()) and self.eos_ids:
            logits = logits.clone()
            logits[masked.nonzero()[:, 0].unsqueeze(1), torch.tensor(self.eos_ids, device=logits.device)] = float("-inf")
        return probs_from_logits(logits, self.sampling)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _prompt_tensor(input_ids, device) -> torch.Tensor:
    """A 1-D sequence or a (1, n) tensor of token ids -> a (n,) int64 tensor; refuse anything else."""
    if isinstance(input_ids, str):
        raise TypeError("input_ids must be token ids, not a string: tokenize the prompt first")
    ids = torch.as_tensor(input_ids)
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
    return ids.to(device=device, dtype=torch.long)


def _check_int(name: str, value, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def _eos_ids(model, eos_token_id) -> tuple[int, ...]:
    if eos_token_id is None:
        gen_cfg = getattr(model, "generation_config", None)
        eos_token_id = getattr(gen_cfg, "eos_token_id", None)
        if eos_token_id is None:
            eos_token_id = getattr(model.config, "eos_token_id", None)
    if eos_token_id is None:
        return ()
    if isinstance(eos_token_id, int):
        return (eos_token_id,)
    return tuple(int(t) for t in eos_token_id)


def _setup(model, input_ids, max_new_tokens, min_new_tokens, temperature, top_k, top_p, seed, eos_token_id, role="target"):
    """Validate what both loops share; return the prompt tensor, the token rule and the generator."""
    check_causal_lm(model, role)
    _check_int("max_new_tokens", max_new_tokens, 1)
    _check_int("min_new_tokens", min_new_tokens, 0, max_new_tokens)
    _check_int("seed", seed, 0)
    sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)
    ids = _prompt_tensor(input_ids, model.device)
    v = vocab_size(model)
    if int(ids.min()) < 0 or int(ids.max()) >= v:
        raise ValueError(f"input_ids hold token ids outside the model's vocabulary [0, {v})")
    _check_context(model, ids.shape[0], max_new_tokens, role)
    rule = TokenRule(sampling, _eos_ids(model, eos_token_id), min_new_tokens)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    return ids, rule, generator


def _check_context(model, prompt_len: int, max_new_tokens: int, role: str) -> None:
    limit = max_context(model)
    if limit is not None and prompt_len + max_new_tokens > limit:
        raise ValueError(
            f"prompt ({prompt_len} tokens) + max_new_tokens ({max_new_tokens}) exceeds the {role}'s "
            f"context of {limit} tokens; shorten the prompt or lower max_new_tokens"
        )


def _ends(tokens: list[int], eos_ids: tuple[int, ...]) -> list[int]:
    """Cut a list of emitted tokens after the first EOS."""
    for i, t in enumerate(tokens):
        if t in eos_ids:
            return tokens[: i + 1]
    return tokens


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
) -> GenerationOutput:
    """The baseline: one target forward per new token, x_t ~ p(· | x_<t), with a KV cache."""
    ids, rule, generator = _setup(target, input_ids, max_new_tokens, min_new_tokens, temperature, top_k, top_p, seed, eos_token_id)
    lm = CachedLM(target)
    steps: list[StepRecord] = []
    out: list[int] = []
    start = time.perf_counter()
    feed = ids  # the whole prompt first (prefill), then one token at a time
    while len(out) < max_new_tokens:
        t0 = time.perf_counter()
        p = rule.probs(lm.forward(feed, last_only=True), len(out))[0]  # (V,)
        token = sample(p, generator)
        token_id = int(token)
        _sync(lm.device)
        steps.append(
            StepRecord(
                context_len=ids.shape[0] + len(out), draft=[], q_draft=[], p_draft=[], accept_prob=[], uniforms=[],
                decisions=[], n_accepted=0, emitted=[token_id], next_token=token_id, next_kind=PLAIN,
                draft_time_s=0.0, verify_time_s=time.perf_counter() - t0,
            )
        )
        out.append(token_id)
        if token_id in rule.eos_ids:
            break
        feed = token.view(1)
    wall = time.perf_counter() - start
    settings = dict(method="autoregressive", max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    return GenerationOutput(ids.tolist(), out, steps, summarize(steps, wall, lm.forward_count, 0), settings)


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
) -> GenerationOutput:
    """Draft, then verify (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023, Algorithm 2).

    Each step:
      Step 1. The drafter proposes γ' = min(γ, tokens left − 1) tokens x_1..x_γ' with q_1..q_γ'.
      Step 2. ONE target forward over [last token, x_1..x_γ'] gives p_1..p_γ'+1.
      Step 3. The verifier keeps an accepted prefix of n drafts and adds one token of its own.
      Step 4. The target's KV cache drops the γ' − n rejected drafts; the drafter reconciles its own.
    ``verifier=None`` is speculative sampling, which at temperature 0 is exactly greedy matching.
    Invariant: the target's cache holds every token of the sequence except the last one.
    """
    ids, rule, generator = _setup(target, input_ids, max_new_tokens, min_new_tokens, temperature, top_k, top_p, seed, eos_token_id)
    _check_int("gamma", gamma, 1, MAX_GAMMA)
    drafter = as_drafter(drafter)
    verifier = get_verifier(verifier)
    drafter_model = getattr(drafter, "model", None)
    if drafter_model is not None:
        check_same_vocabulary(target, drafter_model)
        _check_context(drafter_model, ids.shape[0], max_new_tokens, "drafter")
        if drafter_model.device != target.device:
            raise ValueError(f"drafter is on {drafter_model.device} but the target is on {target.device}; put both on one device")
    elif getattr(drafter, "vocab_size", None) not in (None, vocab_size(target)):
        raise ValueError(f"drafter vocabulary ({drafter.vocab_size}) differs from the target's ({vocab_size(target)})")

    tree_mode = bool(getattr(verifier, "tree", False))
    drafter_name = getattr(drafter, "name", type(drafter).__name__)
    if tree_mode and not callable(getattr(drafter, "propose_tree", None)):
        raise ValueError(
            f"verifier {verifier.name!r} checks a tree of drafts, but drafter {drafter_name!r} cannot branch "
            "(it has no propose_tree); pick a linear verifier or a drafter that branches"
        )
    # self-drafting heads read the target's state: observe_hidden gets the (k, d) final hidden states
    # of the k tokens the target consumed that stay in the sequence (prompt, then root + accepted drafts)
    wants_hidden = callable(getattr(drafter, "observe_hidden", None))
    # a side branch (lookahead decoding) rides along in the verification forward; see drafters/base.py
    side_branch = callable(getattr(drafter, "lookahead_inputs", None))
    target_vocab, target_context = vocab_size(target), max_context(target)

    lm = CachedLM(target)
    drafter_forwards_before = _drafter_forwards(drafter)
    steps: list[StepRecord] = []
    n_new = 0
    start = time.perf_counter()
    if ids.shape[0] > 1:
        prefill = lm.forward(ids[:-1], last_only=not wants_hidden, hidden=wants_hidden)  # all but the last token (the invariant)
        if wants_hidden:
            drafter.observe_hidden(prefill[1])  # (len − 1, d): every prompt token but the last
    while n_new < max_new_tokens:
        gamma_step = min(gamma, max_new_tokens - n_new - 1)
        past = lm.length  # = len(ids) − 1: the root (last token) is fed now
        t0 = time.perf_counter()
        if tree_mode:
            tree = _propose_tree(drafter, ids, verifier.branching_for(gamma_step), rule, n_new, generator)
            parents = torch.cat([tree.parents.new_full((1,), -1), torch.where(tree.parents < 0, 0, tree.parents + 1)])
        else:
            draft = _cut_after_eos(_propose(drafter, ids, gamma_step, rule, n_new, generator), rule.eos_ids)
            tree, parents = DraftTree.chain(draft), None
        side = _lookahead_inputs(drafter, ids, target_vocab, target_context) if side_branch else None
        _sync(lm.device)
        t1 = time.perf_counter()

        feed = torch.cat([ids[-1:], tree.tokens])  # (N+1,) the root, then the drafts
        if side is None:
            out = lm.forward(feed, parents=parents, hidden=wants_hidden)  # (N+1, V)
        else:  # the side tokens come last, see only the prefix, the root and each other, and leave the cache at once
            chain = torch.arange(-1, len(tree), device=ids.device)
            attend, depth = with_side_branch(parents if tree_mode else chain, side[1], side[2])
            out = lm.forward(torch.cat([feed, side[0]]), attend=attend, depth=depth, hidden=wants_hidden)  # (N+1+M, V)
            lm.rollback(side[0].shape[0])  # before the drafts' rollback / keep, which assume the drafts come last
        logits, hidden = out if wants_hidden else (out, None)
        if side is not None:  # only the tree rows take part in verification
            logits, side_logits = logits[: len(feed)], logits[len(feed):]  # (N+1, V), (M, V)
            hidden = None if hidden is None else hidden[: len(feed)]
        p = rule.probs(logits, n_new + depths(parents) if tree_mode else n_new)  # tree rows: new-token index per row
        if tree_mode:
            verdict = verifier.verify(tree, p, generator)
            lm.keep(past + 1, [past + 1 + j for j in verdict.path])
            shown, last_row = verdict.shown, (verdict.path[-1] + 1 if verdict.path else 0)
        else:
            verdict = verifier.verify(draft, p, generator)
            lm.rollback(len(draft) - verdict.n_accepted)
            shown, last_row = list(range(len(draft))), verdict.n_accepted
        n = verdict.n_accepted
        drafter.observe(n, len(shown))
        if wants_hidden:  # the rows of the tokens that stay: the root and the accepted drafts
            kept_rows = [0] + ([j + 1 for j in verdict.path] if tree_mode else list(range(1, n + 1)))
            drafter.observe_hidden(hidden[kept_rows])  # (n + 1, d)
        emitted = _ends(verdict.tokens, rule.eos_ids)
        t2 = time.perf_counter()

        q_stop = None  # q at the position the target's own token was drawn (none after a full acceptance)
        if n < len(shown):
            stop_node = shown[n]
            q_stop = tree.q[stop_node] if tree.q is not None else one_hot(tree.tokens[stop_node], p.shape[-1])
        steps.append(
            StepRecord(
                context_len=ids.shape[0], draft=tree.tokens[shown].tolist(), q_draft=verdict.q_draft, p_draft=verdict.p_draft,
                accept_prob=verdict.accept_prob, uniforms=verdict.uniforms, decisions=verdict.decisions,
                n_accepted=n, emitted=emitted, next_token=verdict.tokens[-1],
                next_kind=PLAIN if len(tree) == 0 else (BONUS if verdict.bonus else CORRECTED),
                draft_time_s=t1 - t0, verify_time_s=t2 - t1, top_at_stop=top_at_stop(p[last_row], q_stop),
                tree=_tree_record(tree, verdict) if tree_mode else None,
            )
        )
        ids = torch.cat([ids, torch.tensor(emitted, dtype=torch.long, device=ids.device)])
        n_new += len(emitted)
        if side is not None:
            drafter.observe_lookahead(side_logits, ids)  # Jacobi update of the window, n-gram harvest
        if len(emitted) < len(verdict.tokens) or emitted[-1] in rule.eos_ids:
            break
    wall = time.perf_counter() - start
    out_ids = ids.tolist()
    prompt_len = len(out_ids) - n_new
    settings = dict(
        method="speculative", drafter=getattr(drafter, "name", type(drafter).__name__),
        verifier=getattr(verifier, "name", type(verifier).__name__), gamma=gamma, max_new_tokens=max_new_tokens,
        temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
    )
    stats = summarize(steps, wall, lm.forward_count, _drafter_forwards(drafter) - drafter_forwards_before)
    return GenerationOutput(out_ids[:prompt_len], out_ids[prompt_len:], steps, stats, settings)


def _propose(drafter, ids: torch.Tensor, gamma: int, rule: TokenRule, n_new: int, generator) -> Draft:
    """Ask the drafter for up to gamma tokens and check what comes back."""
    if gamma == 0:
        return Draft(tokens=ids.new_empty(0))
    name = getattr(drafter, "name", type(drafter).__name__)
    draft = drafter.propose(ids, gamma, lambda logits, i: rule.probs(logits, n_new + i, who="drafter"), generator)
    if not isinstance(draft, Draft):
        raise TypeError(f"drafter {name!r} returned {type(draft).__name__}, expected a Draft")
    if len(draft) > gamma:
        raise ValueError(f"drafter {name!r} proposed {len(draft)} tokens, more than the {gamma} asked for")
    if len(draft) == 0 and not getattr(drafter, "may_abstain", False):
        raise ValueError(f"drafter {name!r} proposed no tokens when asked for {gamma}")
    if draft.q is not None and draft.q.shape[0] != len(draft):
        raise ValueError(f"drafter {name!r} gave {draft.q.shape[0]} q rows for {len(draft)} tokens")
    return Draft(draft.tokens.to(device=ids.device, dtype=torch.long), draft.q)


def _propose_tree(drafter, ids: torch.Tensor, branching: tuple[int, ...], rule: TokenRule, n_new: int, generator) -> DraftTree:
    """Ask a branching drafter for a tree at most len(branching) deep and check what comes back."""
    if not branching:
        return DraftTree(tokens=ids.new_empty(0), parents=ids.new_empty(0))
    name = getattr(drafter, "name", type(drafter).__name__)
    tree = drafter.propose_tree(ids, branching, lambda logits, i: rule.probs(logits, n_new + i, who="drafter"), generator)
    if not isinstance(tree, DraftTree):
        raise TypeError(f"drafter {name!r} returned {type(tree).__name__} from propose_tree, expected a DraftTree")
    check_parents(tree.parents)
    if len(tree) and int(depths(tree.parents).max()) >= len(branching):
        raise ValueError(f"drafter {name!r} proposed a tree deeper than the {len(branching)} levels asked for")
    if len(tree) == 0 and not getattr(drafter, "may_abstain", False):
        raise ValueError(f"drafter {name!r} proposed no tokens when asked for a tree")
    return DraftTree(tree.tokens.to(device=ids.device, dtype=torch.long), tree.parents.to(device=ids.device, dtype=torch.long), tree.q)


def _lookahead_inputs(drafter, ids: torch.Tensor, vocab: int, context: int | None):
    """The drafter's side-branch tokens, depths and mask for this step, checked; None past the context."""
    name = getattr(drafter, "name", type(drafter).__name__)
    tokens, depth, attend = drafter.lookahead_inputs(ids)
    m = tokens.shape[0]
    if tokens.dim() != 1 or tuple(depth.shape) != (m,) or tuple(attend.shape) != (m, m) or attend.dtype != torch.bool:
        raise ValueError(f"drafter {name!r} gave lookahead inputs of shapes {tuple(tokens.shape)}, "
                         f"{tuple(depth.shape)}, {tuple(attend.shape)} {attend.dtype}; expected (M,), (M,), (M, M)")
    if m and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab or int(depth.min()) < 1):
        raise ValueError(f"drafter {name!r} gave lookahead tokens outside [0, {vocab}) or at a depth < 1")
    if m and context is not None and ids.shape[0] - 1 + int(depth.max()) >= context:
        return None  # past the model's positions: skip the side branch this step (the drafter's window waits)
    device = ids.device
    return tokens.to(device=device, dtype=torch.long), depth.to(device=device, dtype=torch.long), attend.to(device)


def _tree_record(tree: DraftTree, verdict) -> dict:
    """What the tree view draws: every node, its parent, the outcome, and the accepted path."""
    return {"tokens": tree.tokens.tolist(), "parents": tree.parents.tolist(), "decisions": verdict.node_decisions,
            "accept_prob": verdict.node_accept_prob, "path": verdict.path}


def _cut_after_eos(draft: Draft, eos_ids: tuple[int, ...]) -> Draft:
    """Drafted tokens after an EOS can never be emitted; do not make the target score them."""
    if not eos_ids or len(draft) == 0:
        return draft
    is_eos = torch.isin(draft.tokens, torch.tensor(eos_ids, device=draft.tokens.device))
    if not bool(is_eos.any()):
        return draft
    return draft.truncated(int(is_eos.to(torch.int64).argmax()) + 1)


def _drafter_forwards(drafter) -> int:
    lm = getattr(drafter, "lm", None)
    return lm.forward_count if lm is not None else 0
