"""A bug-hunting lab: five subtly wrong speculative-sampling verifiers, and the tools that catch them.

The setting is small enough to compute every law exactly: a 5-token vocabulary, a target and a drafter that give
raw logits for every prefix, and the loop's sampling settings (temperature T, top-k) applied to both, as
:mod:`specdec_lab.core.config` applies them. :meth:`Lab.exact_law` enumerates the first two emitted tokens of the whole
loop (:func:`specdec_lab.verifiers.laws.emitted_law`); :meth:`Lab.truth` is the target's own law; :meth:`Lab.chi_square`
samples the loop and tests the counts against the truth.

The five verifiers, each one change away from speculative sampling:

1. :class:`IgnoresTopKInQ`: verifies with the drafter's distribution BEFORE top-k, while the draft was sampled
   after it, as transformers' candidate generators did (huggingface/transformers#47932, fixed in #48007): the
   acceptance ratio p/q is inflated by 1/Z, Z the mass top-k kept.
2. :class:`UnnormalisedResidual`: after a rejection, samples from max(0, p − q) by inverse CDF without dividing by
   its total, so the missing mass falls on the last token.
3. :class:`WrongTemperatureQ`: computes q at temperature 1 while the draft was sampled at T.
4. :class:`NoMin`: accepts when u < p/q and reports p/q as the acceptance probability, with no min(1, ·).
5. :class:`ForgetsBonus`: after a full acceptance, emits no bonus token.

Each still claims ``lossless = True``, as its author believed. Not all five are wrong in the same way, which is
the lesson: the exact law shows which ones change the output
(1, 2, 3) and which ones keep it exact but break something else (4: a reported "probability" above 1 inflates
α estimated from it; 5: fewer tokens per step).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import torch

from ..core.types import Draft
from ..core.validate import check_int, is_int, is_number
from ..verifiers.laws import chi_square_pvalue, emitted_law, law_distance, target_law
from ..core.sampling import sample
from ..verifiers.token import SpeculativeSampling, draft_rows


@dataclass(frozen=True)
class Lab:
    """Target and drafter logits for every prefix of a small vocabulary, sampled at ``temperature`` with ``top_k``."""

    vocab: int = 5
    temperature: float = 0.7
    top_k: int = 3
    gamma: int = 2
    seed: int = 2  # a setting where every law-changing bug moves the law by ≥ 0.04 in TV

    def __post_init__(self):
        check_int("Lab vocab", self.vocab, 2)
        if not (is_number(self.temperature) and math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"Lab temperature must be a finite number > 0 (the lab samples), got {self.temperature!r}")
        if self.top_k is not None:
            check_int("Lab top_k", self.top_k, 1, self.vocab)
        check_int("Lab gamma", self.gamma, 1)
        check_int("Lab seed", self.seed, 0)

    # Every accessor returns a copy: the tables are cached once per process, and a caller that changed a cached row in
    # place (lab.p_of(()).mul_(0.5)) would change the law of every lab made after it, until the kernel restarts.

    def logits(self, who: str, prefix: tuple[int, ...]) -> torch.Tensor:
        """(V,) float64: the raw logits of ``who`` ("target" or "drafter") after ``prefix`` (a copy)."""
        return _logits(self.seed, who, self.vocab, self._checked(who, prefix)).clone()

    def dist(self, who: str, prefix: tuple[int, ...], temperature: float | None = None, top_k: int | None = -1) -> torch.Tensor:
        """(V,) float64: softmax(logits / T) after top-k (``top_k=None``: no top-k; -1: the lab's), a copy."""
        temperature = self.temperature if temperature is None else temperature
        return _dist(self.seed, who, self.vocab, self._checked(who, prefix), temperature,
                     self.top_k if top_k == -1 else top_k).clone()

    def _checked(self, who: str, prefix) -> tuple[int, ...]:
        """The prefix as a tuple of token ids in [0, vocab) (a list will do), for a known model."""
        if who not in ("target", "drafter"):
            raise ValueError(f"the lab has a 'target' and a 'drafter', not {who!r}")
        prefix = tuple(prefix)
        if not all(is_int(t) and 0 <= t < self.vocab for t in prefix):
            raise ValueError(f"a prefix holds token ids in [0, {self.vocab}), got {prefix!r}")
        return prefix

    def p_of(self, prefix: tuple[int, ...]) -> torch.Tensor:
        return self.dist("target", prefix)

    def q_of(self, prefix: tuple[int, ...]) -> torch.Tensor:
        row = self.dist("drafter", prefix)
        _PREFIX_OF_ROW[self, _key(row)] = prefix
        return row

    def drafter_prefix(self, q_row: torch.Tensor) -> tuple[int, ...]:
        """The prefix whose drafter row this is (every row the lab handed out is remembered)."""
        try:
            return _PREFIX_OF_ROW[self, _key(q_row)]
        except KeyError:
            raise ValueError("this q row is not one the lab handed out (lab.q_of): a row changed in place or made "
                             "elsewhere has no prefix") from None

    def exact_law(self, verifier, n_tokens: int = 2) -> dict:
        """The exact law of the first ``n_tokens`` the loop emits with this verifier."""
        return emitted_law(verifier, self.p_of, self.q_of, self.gamma, n_tokens)

    def truth(self, n_tokens: int = 2) -> dict:
        """The target's own law of its first ``n_tokens`` (what a lossless loop emits)."""
        return target_law(self.p_of, n_tokens)

    def tv(self, verifier, n_tokens: int = 2) -> float:
        """Total variation between the verifier's exact law and the target's."""
        return law_distance(self.exact_law(verifier, n_tokens), self.truth(n_tokens))

    def sample(self, verifier, runs: int, n_tokens: int = 2, seed: int = 0) -> dict:
        """Counts of the first ``n_tokens`` over ``runs`` simulated loops (drafts x ~ q, then the verifier)."""
        generator = torch.Generator().manual_seed(seed)
        counts: dict[tuple[int, ...], int] = {}
        for _ in range(runs):
            out: tuple[int, ...] = ()
            while len(out) < n_tokens:
                drafts: tuple[int, ...] = ()
                for _ in range(self.gamma):
                    drafts += (int(sample(self.q_of(out + drafts), generator)),)
                q = torch.stack([self.q_of(out + drafts[:i]) for i in range(self.gamma)])
                p = torch.stack([self.p_of(out + drafts[:i]) for i in range(self.gamma + 1)])
                out += tuple(verifier.verify(Draft(torch.tensor(drafts), q), p, generator).tokens)
            counts[out[:n_tokens]] = counts.get(out[:n_tokens], 0) + 1
        return counts

    def chi_square(self, verifier, runs: int = 2000, n_tokens: int = 2, seed: int = 0) -> float:
        """The χ² p-value of :meth:`sample`'s counts against :meth:`truth` (small cells pooled)."""
        truth = self.truth(n_tokens)
        counts = self.sample(verifier, runs, n_tokens, seed)
        keys = sorted(set(truth) | set(counts))
        return chi_square_pvalue(torch.tensor([counts.get(k, 0) for k in keys]),
                                 torch.tensor([truth.get(k, 0.0) for k in keys], dtype=torch.float64))


_PREFIX_OF_ROW: dict = {}


def _key(row: torch.Tensor) -> tuple:
    return tuple(round(x, 12) for x in row.double().tolist())


@functools.lru_cache(maxsize=None)
def _logits(seed: int, who: str, vocab: int, prefix: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(repr((seed, who, prefix)).encode()))  # hash() of a str varies per process
    return 2.0 * torch.randn(vocab, generator=g, dtype=torch.float64)


@functools.lru_cache(maxsize=None)
def _dist(seed: int, who: str, vocab: int, prefix: tuple[int, ...], temperature: float, top_k: int | None) -> torch.Tensor:
    """softmax(logits / T) over the top_k largest logits, in float64 (the loop's rule, without its float32 rounding,
    so that exact laws agree to ~1e-15)."""
    logits = _logits(seed, who, vocab, prefix) / temperature
    if top_k is not None and top_k < vocab:
        logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[-1], float("-inf"))
    return torch.softmax(logits, dim=-1)


class _WrongQ(SpeculativeSampling):
    """Speculative sampling that verifies with some other q than the one the draft was sampled from."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def wrong_q(self, prefix: tuple[int, ...]) -> torch.Tensor:
        raise NotImplementedError

    def verify(self, draft, p, generator, uniforms=None):
        rows = torch.stack([self.wrong_q(self.lab.drafter_prefix(row)) for row in draft.q]).to(p.dtype)
        return super().verify(Draft(draft.tokens, rows), p, generator, uniforms)


class IgnoresTopKInQ(_WrongQ):
    """WRONG: q is the drafter's distribution before top-k; the draft was sampled after it."""

    name = "bug: ignores top-k in q"

    def wrong_q(self, prefix):
        return self.lab.dist("drafter", prefix, top_k=None)


class WrongTemperatureQ(_WrongQ):
    """WRONG: q is computed at temperature 1; the draft was sampled at the lab's temperature."""

    name = "bug: q at the wrong temperature"

    def wrong_q(self, prefix):
        return self.lab.dist("drafter", prefix, temperature=1.0)


class UnnormalisedResidual(SpeculativeSampling):
    """WRONG: after a rejection, inverse-CDF sampling from max(0, p − q) without normalising it: the mass it lacks
    (1 − Σ max(0, p − q) = α) lands on the last token of the vocabulary."""

    name = "bug: residual not normalised"

    def verify(self, draft, p, generator, uniforms=None):
        verdict = super().verify(draft, p, generator, uniforms)
        n = verdict.n_accepted
        if n < len(draft.tokens):
            mass = (p[n] - draft_rows(draft, p)[0][n]).clamp_min(0.0)
            mass[-1] += 1 - mass.sum()  # where a cumulative sum that never reaches u stops
            verdict.next_dist = mass
            verdict.tokens[-1] = int(sample(mass, generator))
        return verdict


class NoMin(SpeculativeSampling):
    """Accepts when u < p/q and reports p/q itself as the acceptance probability (no min(1, ·))."""

    name = "bug: no min(1, p/q)"

    def verify(self, draft, p, generator, uniforms=None):
        verdict = super().verify(draft, p, generator, uniforms)
        verdict.accept_prob = [px / qx if qx > 0 else 1.0 for px, qx in zip(verdict.p_draft, verdict.q_draft)]
        return verdict


class ForgetsBonus(SpeculativeSampling):
    """After every draft was accepted, emits no bonus token (the step ends with the last draft)."""

    name = "bug: forgets the bonus token"

    def verify(self, draft, p, generator, uniforms=None):
        verdict = super().verify(draft, p, generator, uniforms)
        if verdict.n_accepted == len(draft.tokens):
            verdict.tokens = verdict.tokens[:-1]
        return verdict


def suspects(lab: Lab) -> dict[str, SpeculativeSampling]:
    """The five verifiers of the lab, by name, in the order of the module docstring."""
    bugs = [IgnoresTopKInQ(lab), UnnormalisedResidual(), WrongTemperatureQ(lab), NoMin(), ForgetsBonus()]
    return {b.name: b for b in bugs}


def changes_the_law(lab: Lab, verifier) -> bool:
    """The reference answer of the lab: does the verifier's exact law differ from the target's (beyond rounding)?"""
    return lab.tv(verifier) > 1e-9
