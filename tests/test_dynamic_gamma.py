"""Dynamic draft length: transformers' heuristic γ schedule and the drafter's confidence stop.

Neither changes which tokens are emitted, only how many each step may emit, so
greedy speculative decoding must still equal the target's own greedy output.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from transformers.generation.candidate_generator import AssistedCandidateGenerator

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.drafters import Draft, ModelDrafter
from specdec_lab.drafters.dynamic import HeuristicGamma
from specdec_lab.core.sampling import SamplingConfig, probs_from_logits

from conftest import perturbed_copy, random_prompts, tiny_llama


class ScriptedDrafter:
    """Proposes `gamma` zeros and records what it was asked and told."""

    name = "scripted"
    may_abstain = False
    vocab_size = 7

    def __init__(self):
        self.asked: list[int] = []
        self.observed: list[tuple[int, int]] = []
        self.hidden: list[torch.Tensor] = []

    def propose(self, ids, gamma, to_probs, generator) -> Draft:
        self.asked.append(gamma)
        return Draft(torch.zeros(gamma, dtype=torch.long))

    def observe(self, verdict, hidden=None) -> None:
        if verdict is not None:  # None: the prompt's prefill, which only hidden-state readers are told of
            self.observed.append((verdict.n_accepted, verdict.n_drafted))
        if hidden is not None:
            self.hidden.append(hidden)


def told(n_accepted: int, n_drafted: int) -> SimpleNamespace:
    """What the loop hands observe(): a verdict with its counts."""
    return SimpleNamespace(n_accepted=n_accepted, n_drafted=n_drafted)


def run_schedule(dynamic: HeuristicGamma, accepted_per_step: list[int], loop_gamma: int = 64) -> list[int]:
    """Propose, then report `accepted` of the drafted tokens; return γ after each step."""
    after = []
    for accepted in accepted_per_step:
        drafted = len(dynamic.propose(torch.tensor([1]), loop_gamma, None, None))
        dynamic.observe(told(min(accepted, drafted), drafted))
        after.append(dynamic.gamma)
    return after


def test_heuristic_schedule_plus_two_minus_one_floor_one():
    inner = ScriptedDrafter()
    dynamic = HeuristicGamma(inner, start=5)
    all_in = 99  # more than any draft: every drafted token accepted
    steps = [all_in, 3, 0, 0, 0, 0, 0, 0, all_in, 1]
    assert run_schedule(dynamic, steps) == [7, 6, 5, 4, 3, 2, 1, 1, 3, 2]
    assert dynamic.gamma_history == inner.asked == [5, 7, 6, 5, 4, 3, 2, 1, 1, 3]
    assert inner.observed[:2] == [(5, 5), (3, 7)]  # the inner drafter is told every verdict


def test_loop_gamma_caps_each_step_and_max_gamma_caps_growth():
    dynamic = HeuristicGamma(ScriptedDrafter(), start=5)
    assert run_schedule(dynamic, [99, 99], loop_gamma=3) == [7, 9]  # drafted 3 of 3: still "all accepted"
    assert dynamic.gamma_history == [3, 3]
    capped = HeuristicGamma(ScriptedDrafter(), start=5, max_gamma=8)
    assert run_schedule(capped, [99, 99, 99, 0]) == [7, 8, 8, 7]


def test_an_empty_step_leaves_gamma_alone():
    dynamic = HeuristicGamma(ScriptedDrafter(), start=4)
    dynamic.observe(told(0, 0))
    dynamic.observe(None, torch.zeros(3, 4))  # the prefill is no evidence either
    assert dynamic.gamma == 4


def test_schedule_matches_transformers_update_candidate_strategy():
    """Drive transformers' own method (on a stand-in object) and ours with the same verdicts."""
    config = SimpleNamespace(num_assistant_tokens_schedule="heuristic", assistant_confidence_threshold=None)
    theirs = SimpleNamespace(assistant_generation_config=config, num_assistant_tokens=5)
    ours = HeuristicGamma(ScriptedDrafter(), start=5)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        drafted = int(theirs.num_assistant_tokens)
        assert ours.gamma == drafted
        accepted = drafted if torch.rand(1, generator=g).item() < 0.5 else int(torch.randint(drafted, (1,), generator=g))
        scores = torch.zeros(1, drafted + 1, 7)  # transformers reads len(scores[0]) − 1 as the number drafted
        AssistedCandidateGenerator.update_candidate_strategy(theirs, None, scores, accepted)
        ours.observe(told(accepted, drafted))
    assert ours.gamma == theirs.num_assistant_tokens


def test_wrapper_forwards_what_the_loop_reads():
    inner = ScriptedDrafter()
    dynamic = HeuristicGamma(inner)
    assert dynamic.name == "scripted+heuristic-γ"
    assert (dynamic.may_abstain, dynamic.vocab_size, dynamic.model, dynamic.lm) == (False, 7, None, None)
    assert not dynamic.reads_hidden  # the loop would compute hidden states for nothing
    inner.reads_hidden = True  # declared, in the contract's own word
    reading = HeuristicGamma(inner)
    assert reading.reads_hidden and not reading.branches
    reading.observe(told(1, 2), torch.zeros(2, 4))
    assert len(inner.hidden) == 1 and inner.observed[-1] == (1, 2)  # the hidden states reach the inner drafter
    model = tiny_llama(layers=1, hidden=16)
    wrapped = HeuristicGamma(model)  # a bare causal LM becomes a ModelDrafter first
    assert wrapped.model is model and wrapped.lm is wrapped.inner.lm and wrapped.name == "small-model+heuristic-γ"


@pytest.mark.parametrize(
    "make, option",
    [
        (lambda: HeuristicGamma(ScriptedDrafter(), start=0), "start"),
        (lambda: HeuristicGamma(ScriptedDrafter(), max_gamma=0), "max_gamma"),
        (lambda: HeuristicGamma(ScriptedDrafter(), start=6, max_gamma=4), "max_gamma"),
        (lambda: ModelDrafter(tiny_llama(layers=1, hidden=16), stop_below=0.0), "stop_below"),
        (lambda: ModelDrafter(tiny_llama(layers=1, hidden=16), stop_below=1.0), "stop_below"),
        (lambda: ModelDrafter(tiny_llama(layers=1, hidden=16), stop_below=-0.3), "stop_below"),
        (lambda: ModelDrafter(tiny_llama(layers=1, hidden=16), stop_below=math.nan), "stop_below"),
    ],
)
def test_bad_options_name_the_option(make, option):
    with pytest.raises(ValueError, match=option):
        make()


# --- on real (tiny) models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peaked_pair():
    """A target whose next-token confidence ranges from ~0.15 to ~1 (init 1.0), and a noisy copy as drafter."""
    target = tiny_llama(layers=2, seed=0, init=1.0)
    return target, perturbed_copy(target, noise=0.05)


def test_confidence_stop_keeps_draft_q_and_cache_consistent(peaked_pair):
    _, model = peaked_pair
    drafter = ModelDrafter(model, stop_below=0.5)
    rule = SamplingConfig(0.0)
    ids = torch.tensor(random_prompts(1, seed=3)[0])
    lengths = []
    for step in range(8):
        draft = drafter.propose(ids, 6, lambda logits, i: probs_from_logits(logits, rule), None)
        n = len(draft)
        lengths.append(n)
        assert 1 <= n <= 6 and draft.q.shape[0] == n
        assert torch.equal(draft.tokens, draft.q.argmax(-1))  # greedy: x_i = argmax q_i
        assert drafter.lm.length == drafter.cached_ids.shape[0] == ids.shape[0] + n - 1  # last draft never fed
        full = torch.cat([ids, draft.tokens])  # (len + n,)
        with torch.no_grad():  # confidences c_1..c_n from a fresh forward over the whole sequence
            conf = model(full[None]).logits[0, ids.shape[0] - 1 : -1].softmax(-1).max(-1).values  # (n,)
        assert bool((conf[:-1] >= 0.5).all())  # it went on only after confident tokens
        assert n == 6 or conf[-1] < 0.5  # and stopped right after the first unsure one
        kept = n if step % 2 else n - 1  # the next sequence: all drafts + a bonus, or all but the last + a correction
        ids = torch.cat([full[: ids.shape[0] + kept], torch.tensor([step * 7 % 96])])
    assert min(lengths) < 6 and max(lengths) > 1


def test_greedy_equality_with_dynamic_draft_lengths(peaked_pair):
    target, model = peaked_pair
    for prompt in random_prompts(2, seed=1):
        ref = generate_autoregressive(target, prompt, max_new_tokens=16).token_ids

        heuristic = HeuristicGamma(ModelDrafter(model))
        out = generate_speculative(target, heuristic, prompt, gamma=16, max_new_tokens=16)
        assert out.token_ids == ref
        assert out.settings["drafter"] == "small-model+heuristic-γ"
        history = heuristic.gamma_history
        assert [len(s.draft) for s in out.steps[: len(history)]] == history
        assert any(b > a for a, b in zip(history, history[1:])) and any(b < a for a, b in zip(history, history[1:]))
        assert out.stats.drafter_forwards > 0  # counted through the forwarded .lm

        confident = ModelDrafter(model, stop_below=0.5)
        out = generate_speculative(target, confident, prompt, gamma=6, max_new_tokens=16)
        assert out.token_ids == ref
        asked = [min(6, 16 - sum(len(t.emitted) for t in out.steps[:i]) - 1) for i in range(len(out.steps))]
        assert any(len(s.draft) < a for s, a in zip(out.steps, asked))  # stopped early on some step
        assert any(len(s.draft) > 1 for s in out.steps)  # and went on while confident on another
