"""Bad-input probes of the engine's contracts (issue 33, items 3, 4, 9, 11, 13): what a drafter or a verifier hands
back, a fully masked EOS row, options without a bound, and NumPy / reference arguments. Each gives a clear error.

``probes()`` is shared by the table (``rows``) and by tests/test_contracts_v3.py, which asserts each error type and
message. The misbehaving drafters and verifiers below are the smallest objects that show each defect.
"""

from __future__ import annotations

import numpy as np
import torch

from bad_input_outcome import outcome
from conftest import VOCAB, tiny_llama

from specdec_lab import build_drafter, build_verifier, generate_autoregressive, generate_speculative
from specdec_lab.core.types import Draft, DraftTree, Verdict
from specdec_lab.drafters import Drafter, LookaheadDrafter, PromptLookupDrafter, RetrievalDrafter
from specdec_lab.verifiers import GreedyMatch, SpeculativeSampling, TreeGreedy
from specdec_lab.verifiers.tree_shape import best_branching

API, REGISTRY = "API (v3)", "registry (v3)"
DRAFTED = 5  # the token every misbehaving drafter proposes


def uniform_except(value: float, total: float = 1.0) -> torch.Tensor:
    """(V,) a row with ``value`` at the drafted token and the rest of ``total`` spread evenly over the others."""
    row = torch.full((VOCAB,), (total - value) / (VOCAB - 1)) if np.isfinite(value) else torch.full((VOCAB,), 1 / VOCAB)
    row[DRAFTED] = value
    return row


class QDrafter(Drafter):
    """Proposes token 5 at every position, with the q row it was given (in each position)."""

    name = "bad-q"

    def __init__(self, row: torch.Tensor, tokens=None):
        self.row, self.tokens = row, tokens

    def propose(self, ids, gamma, to_probs, generator):
        tokens = torch.full((gamma,), DRAFTED) if self.tokens is None else self.tokens
        return Draft(tokens, None if self.row is None else torch.stack([self.row] * len(tokens)))


class QTreeDrafter(Drafter):
    """Proposes two siblings (tokens 5 and 6) under the root, both drawn from the q row it was given."""

    name, branches = "bad-q-tree", True

    def __init__(self, row: torch.Tensor):
        self.row = row

    def propose_tree(self, ids, branching, to_probs, generator):
        return DraftTree(torch.tensor([DRAFTED, DRAFTED + 1]), torch.tensor([-1, -1]), torch.stack([self.row] * 2))


class HugeTree(QTreeDrafter):
    """Proposes 1025 children of the root (one verification forward would score them all)."""

    name = "huge-tree"

    def propose_tree(self, ids, branching, to_probs, generator):
        return DraftTree(torch.arange(1025) % VOCAB, torch.full((1025,), -1))


class DuckNaN:
    """A third party's drafter that subclasses nothing (adapted by DuckDrafter), with NaN in its q row."""

    name, may_abstain, vocab_size = "duck-nan", False, None

    def propose(self, ids, gamma, to_probs, generator):
        return Draft(torch.tensor([DRAFTED]), uniform_except(float("nan"))[None])


def _verdict(tokens: list, n: int, path: list | None = None) -> Verdict:
    """A bare Verdict: what a third party's verifier might build by hand."""
    return Verdict(n_accepted=n, tokens=tokens, p_draft=[], q_draft=[], accept_prob=[], uniforms=[], decisions=[],
                   next_dist=torch.zeros(VOCAB), path=path or [])


class EmitsTwice(SpeculativeSampling):
    name = "emits-its-tokens-twice"

    def verify(self, draft, p, generator, uniforms=None):
        verdict = super().verify(draft, p, generator, uniforms)
        verdict.tokens = verdict.tokens * 2
        return verdict


class EmitsOutOfRange(SpeculativeSampling):
    name = "emits-10**6"

    def verify(self, draft, p, generator, uniforms=None):
        verdict = super().verify(draft, p, generator, uniforms)
        verdict.tokens[-1] = 10**6
        return verdict


class EmitsNothing(SpeculativeSampling):
    name = "emits-nothing"

    def verify(self, draft, p, generator, uniforms=None):
        verdict = super().verify(draft, p, generator, uniforms)
        verdict.tokens = []
        return verdict


class AcceptsOtherTokens(GreedyMatch):
    """Claims to accept every draft, but emits other tokens than those drafted."""

    name = "accepts-other-tokens"

    def verify(self, draft, p, generator, uniforms=None):
        shifted = [(int(t) + 1) % VOCAB for t in draft.tokens]
        return _verdict(shifted + [0], len(shifted))


class OffThePath(TreeGreedy):
    """Accepts node 1 of a tree whose node 1 hangs under node 0: not a path from the root."""

    name = "off-the-path"

    def verify(self, tree, p, generator, uniforms=None):
        return _verdict([int(tree.tokens[1]), 0], 1, [1])


class ChainTree(QTreeDrafter):
    name = "chain-tree"

    def propose_tree(self, ids, branching, to_probs, generator):
        return DraftTree(torch.tensor([DRAFTED, DRAFTED + 1]), torch.tensor([-1, 0]))


class ReturnsAList(SpeculativeSampling):
    name = "returns-a-list"

    def verify(self, draft, p, generator, uniforms=None):
        return [1, 2]


class EmitsMaskedEOS(SpeculativeSampling):
    """Rejects everything and emits token 3, the EOS that min_new_tokens masks."""

    name = "emits-masked-eos"

    def verify(self, draft, p, generator, uniforms=None):
        return _verdict([3], 0)


def probes() -> list[tuple[str, str, object, type, str]]:
    """(where, input, zero-arg call, error type, regex its message matches), one per bad input."""
    target = tiny_llama(seed=0)
    drafter = tiny_llama(layers=1, seed=1)

    def spec(d=drafter, ids=(1, 2), **kw):
        return lambda: generate_speculative(target, d, list(ids), **({"gamma": 3, "max_new_tokens": 12} | kw))

    every_eos = dict(min_new_tokens=2, eos_token_id=list(range(VOCAB)), max_new_tokens=4)
    masked = r"min_new_tokens=2 forbids EOS at new token 0, but every token the (drafter|target) can produce there is an EOS id"
    q_rules = r"drafter 'bad-q' gave q\[5\] = "
    return [
        # item 3: the drafter's q rows, ids and dtypes
        (API, "q(x) = NaN at the drafted token (T = 1)", spec(QDrafter(uniform_except(float("nan"))), temperature=1.0),
         ValueError, q_rules + r"nan at draft position 0; q rows must be probabilities \(finite\)"),
        (API, "q(x) = 0 at the drafted token, row sums to 1 (T = 1)", spec(QDrafter(uniform_except(0.0)), temperature=1.0),
         ValueError, r"drafted token 5 at position 0 with q = 0.0 there: a token drawn from q has q\(x\) > 0"),
        (API, "q(x) = −0.5 at the drafted token (T = 1)", spec(QDrafter(uniform_except(-0.5)), temperature=1.0),
         ValueError, q_rules + r"-0.5 at draft position 0; q rows must be probabilities \(>= 0\)"),
        (API, "q(x) = −0.5 at the drafted token (T = 0)", spec(QDrafter(uniform_except(-0.5))),
         ValueError, q_rules + r"-0.5 at draft position 0"),
        (API, "q rows summing to 2", spec(QDrafter(uniform_except(2 / VOCAB, total=2.0)), temperature=1.0),
         ValueError, r"q row summing to 2 at draft position 0; each row must sum to 1 \(within 0.00035 for torch.float32\)"),
        (API, "q rows of dtype int64", spec(QDrafter(torch.ones(VOCAB, dtype=torch.long))),
         TypeError, r"gave q of type Tensor torch.int64; q must be a float tensor"),
        (API, "q rows for a tree, NaN (tree-speculative)", spec(QTreeDrafter(uniform_except(float("nan"))),
                                                                verifier="tree-speculative", temperature=1.0),
         ValueError, r"drafter 'bad-q-tree' gave q\[5\] = nan at draft node 0"),
        (API, "a third party's drafter (DuckDrafter) with NaN q", spec(DuckNaN(), temperature=1.0),
         ValueError, r"drafter 'duck-nan' gave q\[5\] = nan at draft position 0"),
        (API, "float draft tokens (41.7)", spec(QDrafter(None, torch.tensor([41.7]))),
         TypeError, r"drafter 'bad-q' gave tokens of dtype torch.float32 \(e.g. \[41.7\d*\]\); token ids must be integers"),
        (API, "a tree of 1025 nodes", spec(HugeTree(None), verifier="tree-greedy"),
         ValueError, r"drafter 'huge-tree' proposed a tree of 1025 nodes, more than the 1024"),
        # item 4: the verifier's verdict
        (API, "a verifier that emits its tokens twice", spec(verifier=EmitsTwice()),
         ValueError, r"verifier 'emits-its-tokens-twice' emitted \d+ tokens for \d+ accepted drafts .*exactly one token"),
        (API, "a verifier that emits token 10**6", spec(verifier=EmitsOutOfRange()),
         ValueError, r"verifier 'emits-10\*\*6' emitted token ids outside the target's vocabulary \[0, 96\), e.g. \[1000000\]"),
        (API, "a verifier that emits nothing", spec(verifier=EmitsNothing()),
         ValueError, r"verifier 'emits-nothing' emitted \[\]; a verdict emits"),
        (API, "a verifier whose accepted tokens are not the drafts", spec(verifier=AcceptsOtherTokens()),
         ValueError, r"verifier 'accepts-other-tokens' emitted \[.*\] as its accepted drafts, but the tree holds"),
        (API, "a tree verifier whose path skips the root's child", spec(ChainTree(None), verifier=OffThePath()),
         ValueError, r"verifier 'off-the-path' accepted path \[1\], which is not a path from the root"),
        (API, "a verifier that returns a list", spec(verifier=ReturnsAList()),
         TypeError, r"verifier 'returns-a-list' returned list, expected a Verdict"),
        (API, "a verifier that emits the EOS min_new_tokens masks", spec(verifier=EmitsMaskedEOS(), eos_token_id=3,
                                                                        min_new_tokens=2, max_new_tokens=4),
         ValueError, r"verifier 'emits-masked-eos' emitted token 3 at position 0 of the step, where the target gives it "
                     r"probability 0"),
        # item 9: every token an EOS while min_new_tokens masks EOS
        (API, "every token an EOS, min_new_tokens=2, T = 0", spec(**every_eos), ValueError, masked),
        (API, "every token an EOS, min_new_tokens=2, T = 1", spec(**every_eos, temperature=1.0), ValueError, masked),
        (API, "every token an EOS, min_new_tokens=2, autoregressive", lambda: generate_autoregressive(
            target, [1, 2], **every_eos), ValueError, masked),
        # item 11: options without a bound
        (REGISTRY, "prompt lookup with max_ngram=10**7", lambda: build_drafter("prompt-lookup", target, max_ngram=10**7),
         ValueError, r"max_ngram must be <= 64 .*got 10000000"),
        (REGISTRY, "retrieval with max_ngram=10**7", lambda: RetrievalDrafter([1, 2, 3, 4], max_ngram=10**7),
         ValueError, r"max_ngram must be <= 64"),
        (REGISTRY, "lookahead with window=10**6", lambda: LookaheadDrafter(window=10**6),
         ValueError, r"window must be an int between 1 and 64, got 1000000"),
        (REGISTRY, "lookahead with ngram=10**6", lambda: LookaheadDrafter(ngram=10**6),
         ValueError, r"ngram must be an int between 2 and 16"),
        (REGISTRY, "lookahead with guesses=10**6", lambda: LookaheadDrafter(guesses=10**6),
         ValueError, r"guesses must be an int between 1 and 64"),
        (REGISTRY, "tree branching (64,)*6", lambda: build_verifier("tree-greedy", branching=(64,) * 6),
         ValueError, r"tree branching \(64, 64, 64, 64, 64, 64\) makes a tree of 69810262080 nodes .*more than the 1024"),
        (REGISTRY, "tree width 10**9", lambda: build_verifier("tree-speculative", width=10**9),
         ValueError, r"tree width must be an int between 1 and 1024, got 1000000000"),
        (API, "tree width 600 at γ = 4 (2400 nodes)", spec(PromptLookupDrafter(), ids=(1, 2, 1, 2), gamma=4,
                                                          verifier=TreeGreedy(width=600)),
         ValueError, r"tree width 600 at γ = 4: \(600, 1, 1, 1\) makes a tree of 2400 nodes"),
        (REGISTRY, "a prompt-lookup tree of branching (64,)*6", lambda: PromptLookupDrafter().propose_tree(
            torch.tensor([1, 2, 1]), (64,) * 6, None, None), ValueError, r"branching \(64, 64, .*\) makes a tree of"),
        (REGISTRY, "best_branching with budget=10**6", lambda: best_branching({(1, 0): 0.5}, budget=10**6),
         ValueError, r"tree budget is a number of nodes between 1 and 1024, got 1000000"),
        # item 13: NumPy scalars and the reference
        (API, "input_ids=np.array([2**64 − 1], dtype=np.uint64)", spec(ids=np.array([2**64 - 1], dtype=np.uint64)),
         ValueError, r"input_ids hold token ids past the int64 range, e.g. \[18446744073709551615\]"),
        (API, "input_ids=[np.uint64(2**63 + 5)]", spec(ids=[np.uint64(2**63 + 5)]),
         ValueError, r"input_ids hold token ids past the int64 range, e.g. \[9223372036854775813\]"),
        (API, "input_ids=[np.uint64(500)]", spec(ids=[np.uint64(500)]),
         ValueError, r"outside the model's vocabulary \[0, 96\), e.g. \[500\]"),
        (API, "temperature=np.float32(-0.5)", spec(temperature=np.float32(-0.5)),
         ValueError, r"temperature must be >= 0 \(0 means greedy\), got -0.5"),
    ]


def reference_probes() -> list[tuple[str, str, object]]:
    """reference= rows: generate_speculative refuses these before the run (core.checks.check_reference)."""
    target = tiny_llama(seed=0)
    return [(API, f"reference={value!r}", lambda v=value: generate_speculative(target, PromptLookupDrafter(), [1, 2],
                                                                                  max_new_tokens=4, reference=v))
            for value in ("abc", [1, 500], [1.5])]


def rows(tmp_path, monkeypatch) -> list[tuple[str, str, str, str]]:
    return ([(where, label, *outcome(call)) for where, label, call, _, _ in probes()]
            + [(where, label, *outcome(call)) for where, label, call in reference_probes()])
