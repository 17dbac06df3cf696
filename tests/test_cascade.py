"""The cascade drafter (drafters/cascade.py): the second drafter answers exactly the steps the first abstains on."""

from __future__ import annotations

import pytest
import torch

from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
from specdec_lab.drafters import Drafter, FirstNonEmpty, LookaheadDrafter, PromptLookupDrafter, RetrievalDrafter
from specdec_lab.drafters.base import Draft

from conftest import tiny_llama
from test_distribution import PROMPT, V


class Recorder(Drafter):
    """Proposes ``tokens`` on the steps ``answers(len(ids))`` says, else nothing; records what it was asked and told."""

    may_abstain = True

    def __init__(self, name, tokens, answers):
        self.name, self.tokens, self.answers = name, tokens, answers
        self.asked, self.verdicts = [], 0

    def propose(self, ids, gamma, to_probs, generator):
        self.asked.append(len(ids))
        tokens = self.tokens[:gamma] if self.answers(len(ids)) else []
        return Draft(tokens=torch.tensor(tokens, dtype=torch.long))

    def observe(self, verdict, hidden=None):
        self.verdicts += verdict is not None


def test_the_second_drafter_is_asked_only_when_the_first_abstains_and_both_see_every_verdict():
    target = tiny_llama(layers=1, seed=0, vocab=V, hidden=16, init=0.5)
    first = Recorder("even", [1, 2, 3], lambda length: length % 2 == 0)
    second = Recorder("always", [3, 2, 1], lambda length: True)
    cascade = FirstNonEmpty([first, second])
    out = generate_speculative(target, cascade, PROMPT, gamma=3, max_new_tokens=12)
    assert out.token_ids == generate_autoregressive(target, PROMPT, max_new_tokens=12).token_ids
    odd = [n for n in first.asked if n % 2]
    assert second.asked == odd and len(odd) > 0 and len(odd) < len(first.asked)  # both branches were taken
    assert cascade.answered_by == [len(first.asked) - len(odd), len(odd)]
    assert first.verdicts == second.verdicts == len(out.steps)
    for step in out.steps:  # each step's draft is the one its context length picks
        expected = [1, 2, 3] if step.context_len % 2 == 0 else [3, 2, 1]
        assert len(step.draft) >= 1 and step.draft == expected[: len(step.draft)]  # γ shrinks only at the end


def test_lookup_then_retrieval_fills_the_steps_prompt_lookup_leaves_empty():
    target = tiny_llama(layers=1, seed=0, vocab=V, hidden=16, init=0.5)
    datastore = torch.randint(0, V, (400,), generator=torch.Generator().manual_seed(0))
    lookup = PromptLookupDrafter(max_ngram=2, min_ngram=2)
    cascade = build_drafter("lookup+retrieval", target, datastore_ids=datastore, max_ngram=2)
    alone = generate_speculative(target, lookup, PROMPT, gamma=3, max_new_tokens=16)
    both = generate_speculative(target, cascade, PROMPT, gamma=3, max_new_tokens=16)
    assert both.token_ids == alone.token_ids == generate_autoregressive(target, PROMPT, max_new_tokens=16).token_ids
    empty_alone = sum(not s.draft for s in alone.steps)
    assert empty_alone > 0 and sum(not s.draft for s in both.steps) < empty_alone
    assert cascade.name == "lookup+retrieval" and cascade.answered_by[1] > 0


def test_a_cascade_refuses_what_it_cannot_run():
    target = tiny_llama(layers=2, seed=0, vocab=V, hidden=16, init=0.5)
    lookup = PromptLookupDrafter()
    datastore = RetrievalDrafter([[1, 2, 3, 4]])
    with pytest.raises(ValueError, match="at least two"):
        FirstNonEmpty([lookup])
    with pytest.raises(ValueError, match="never abstains"):
        FirstNonEmpty([build_drafter("early-exit", target, exit_layer=1), lookup])
    with pytest.raises(ValueError, match="side branch"):
        FirstNonEmpty([lookup, LookaheadDrafter(window=3, ngram=2, guesses=2)])
    with pytest.raises(ValueError, match="at most one"):
        FirstNonEmpty([lookup, build_drafter("early-exit", target, exit_layer=1), build_drafter("early-exit", target,
                                                                                               exit_layer=1)])
    with pytest.raises(TypeError, match="Drafter objects"):
        FirstNonEmpty([lookup, "retrieval"])
    assert FirstNonEmpty([lookup, datastore]).may_abstain and FirstNonEmpty([lookup, datastore]).branches
