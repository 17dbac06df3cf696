"""The drafter interface: propose only the NEW tokens, and observe the verdict.

A drafter's ``propose`` gets the whole sequence so far (prompt + accepted
output) and returns at most γ new tokens, with the drafter's distribution q
for each (or None when it proposes without one, e.g. a lookup table). It may
keep state (a KV cache, an n-gram pool); it keeps it consistent by comparing
the sequence it is given with the one it last saw, so nothing outside it
has to roll it back.

``to_probs(logits, i)`` is the loop's own logits -> distribution rule for the
i-th drafted position (temperature, top-k, top-p, and the EOS mask that
``min_new_tokens`` needs): a drafter that samples must use it, so q is built
exactly like the target's p.

Every drafter subclasses :class:`Drafter`, which declares what it can do (branch into
trees, read the target's hidden states, ride a side branch in the verification forward)
and gives every hook a no-op default; the loop asks these, never ``getattr``. Wrappers
(adaptive γ) subclass :class:`WrappedDrafter` and so keep every ability of what they wrap.
A third party's object that subclasses nothing goes through ``adapt.DuckDrafter``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..core.sampling import accepted_prefix_len
from ..core.types import Draft, DraftTree, ToProbs


class Drafter:
    """The drafter contract: declare abilities once, override the hooks you need; every hook has a default.

    Abilities (class attributes, read by the loop; never discovered with getattr):
      branches      propose_tree is implemented: tree verifiers may be used
      reads_hidden  observe() also receives the target's final hidden states of the tokens that stay
      side_branch   side_inputs / observe_side add a side branch to the verification forward (lookahead)
      reads_scores  observe_scores() receives the target's logits of every token each forward scored (recycling)
      may_abstain   an empty draft is a normal answer (a lookup that found nothing)
      vocab_size    width of q, checked against the target (None: proposes ids only)
      model         the drafter's own causal LM, checked against the target's vocabulary, device and
                    context (None: no model of its own); lm: its CachedLM, whose forwards the trace counts

    Hooks, in the order the loop calls them:
      reset()                             at the start of every call: forget the previous sequence
      observe(None, hidden)               after the prompt's prefill (only for reads_hidden)
      then each step:
        propose(ids, γ, to_probs, g)      a chain of at most γ new tokens (a linear verifier), or
        propose_tree(ids, branching, ..)  a tree (a tree verifier; only if ``branches``)
        side_inputs(ids)                  the side branch's tokens, depths and mask (only if ``side_branch``)
        observe(verdict, hidden)          the verdict; hidden: the (k, d) states of the root and accepted drafts
        observe_side(logits, ids)         the side tokens' (M, V) logits and the sequence after the step
    """

    name: ClassVar[str] = "drafter"
    branches: ClassVar[bool] = False
    reads_hidden: ClassVar[bool] = False
    side_branch: ClassVar[bool] = False
    reads_scores: ClassVar[bool] = False
    may_abstain: ClassVar[bool] = False
    vocab_size: int | None = None
    model = None
    lm = None

    def reset(self) -> None:
        """Forget everything about the previous sequence (a reused drafter must act exactly like a fresh one)."""

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        """(L,) sequence so far -> at most γ NEW tokens, with q (or q = None for a deterministic draft)."""
        raise NotImplementedError(f"drafter {self.name!r} does not implement propose")

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """(L,) sequence -> a tree with at most branching[d] children per node at depth d (only if ``branches``)."""
        raise TypeError(f"drafter {self.name!r} cannot branch into token trees")

    def observe(self, verdict, hidden: torch.Tensor | None = None) -> None:
        """The step's verdict (None after the prompt's prefill) and, for ``reads_hidden``, the kept (k, d) states."""

    def observe_scores(self, tokens: torch.Tensor, logits: torch.Tensor) -> None:
        """(T,) tokens the target just scored and (T, V) its logits after each (only for ``reads_scores``)."""

    def side_inputs(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Side-branch tokens (M,), depths (M,) >= 1 and mask (M, M) bool; see :class:`SideBranch`."""
        return None

    def observe_side(self, logits: torch.Tensor, ids: torch.Tensor) -> None:
        """(M, V) target logits of the side tokens, and the (L',) sequence after this step's verdict."""

    @property
    def forward_count(self) -> int:
        """Forwards of the drafter's own model so far (0 for model-free drafters)."""
        return self.lm.forward_count if self.lm is not None else 0


class SideBranch:
    """What ``side_branch`` means (lookahead decoding): extra tokens that ride along in the verification forward.

    Each step the loop feeds, in the SAME target forward,

        [root, draft or tree tokens (as usual), side tokens s_1..s_M]

    where side token i sits at position len(ids) − 1 + depth[i] (the root, ids[-1], is at depth 0)
    and attends to the cached prefix, to the root, and to side token j iff attend[i, j]. Drafts never
    see side tokens and side tokens never see drafts, so verification is unchanged; only the draft
    rows are verified. The target's cache then drops the M side tokens and the loop calls
    ``observe_side`` with their (M, V) logits and the sequence after the step. Still one target
    forward per step. M may be 0. Near the end of the model's context (a side token past its
    positions) the loop skips the side branch for that step: no side tokens, no observe_side.
    """


class WrappedDrafter(Drafter):
    """A drafter around another (adaptive γ, ...): every ability and hook is the inner drafter's unless overridden."""

    def __init__(self, inner: Drafter):
        if not isinstance(inner, Drafter):
            raise TypeError(f"wrap a Drafter (see drafters.adapt.as_drafter), got {type(inner).__name__}")
        self.inner = inner

    name = property(lambda self: self.inner.name)
    branches = property(lambda self: self.inner.branches)
    reads_hidden = property(lambda self: self.inner.reads_hidden)
    side_branch = property(lambda self: self.inner.side_branch)
    reads_scores = property(lambda self: self.inner.reads_scores)
    may_abstain = property(lambda self: self.inner.may_abstain)
    vocab_size = property(lambda self: self.inner.vocab_size)
    model = property(lambda self: self.inner.model)
    lm = property(lambda self: self.inner.lm)
    forward_count = property(lambda self: self.inner.forward_count)

    def reset(self) -> None:
        self.inner.reset()

    def propose(self, ids, gamma, to_probs, generator) -> Draft:
        return self.inner.propose(ids, gamma, to_probs, generator)

    def propose_tree(self, ids, branching, to_probs, generator) -> DraftTree:
        return self.inner.propose_tree(ids, branching, to_probs, generator)

    def observe(self, verdict, hidden=None) -> None:
        self.inner.observe(verdict, hidden)

    def observe_scores(self, tokens, logits) -> None:
        self.inner.observe_scores(tokens, logits)

    def side_inputs(self, ids):
        return self.inner.side_inputs(ids)

    def observe_side(self, logits, ids) -> None:
        self.inner.observe_side(logits, ids)


def merge_into_trie(paths, shape: tuple[int, ...], max_paths: int | None = None) -> tuple[list[int], list[int]]:
    """Token paths from the root -> (tokens, parents) of their trie, parents first.

    A node at depth d (the root's children: d = 0) gets at most shape[d] children; a path that
    would add one more is cut there, and paths are cut to len(shape) tokens. With ``max_paths``,
    stop once that many paths have added a node (paths may be a lazy iterator).
    """
    tokens: list[int] = []
    parents: list[int] = []
    kids: list[dict[int, int]] = [{}]  # kids[j + 1]: token -> node, for node j (j = −1: the root)
    grown = 0
    for path in paths:
        path = path.tolist() if isinstance(path, torch.Tensor) else list(path)
        node, grew = -1, False
        for depth, token in enumerate(path[: len(shape)]):
            here = kids[node + 1]
            if token not in here:
                if len(here) >= shape[depth]:
                    break
                here[token] = len(tokens)
                tokens.append(token)
                parents.append(node)
                kids.append({})
                grew = True
            node = here[token]
        grown += grew
        if max_paths is not None and grown == max_paths:
            break
    return tokens, parents


def common_prefix_len(a: torch.Tensor, b: torch.Tensor) -> int:
    """Number of leading positions where two 1-D token sequences agree."""
    m = min(a.shape[0], b.shape[0])
    return accepted_prefix_len(a[:m] == b[:m])
