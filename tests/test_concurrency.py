"""Runs that share a target stay correct: threads and playgrounds on one target give exactly the serial outputs.

Every drafter kind that reads the target's hidden states or shares its head (EAGLE, Medusa, early exit), a model
drafter and prompt lookup each run in a thread of its own, beside a thread running the autoregressive baseline on
the same target; with a fixed seed at T = 0 and T = 0.8 each output equals the serial run's token for token. (The
hidden states used to be captured by a forward pre-hook on the target's shared head, which every other run's
head call fired too.) One drafter object driven by two runs at once is refused.
"""

from __future__ import annotations

import threading

import pytest
import torch

from conftest import tiny_gpt2, tiny_llama
from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
from specdec_lab.core.lm import CachedLM
from specdec_lab.drafters.base import WrappedDrafter
from specdec_lab.drafters.dynamic import HeuristicGamma
from specdec_lab.drafters.prompt_lookup import PromptLookupDrafter
from specdec_lab.lab.viz.playground import Playground
from specdec_lab.models.loading import load_model

PROMPT = "ROMEO.\nBut soft, what light through yonder window breaks"
KINDS = ("eagle", "medusa", "early-exit", "distilled", "prompt-lookup")  # hidden states, shared head, a model, a lookup
NEW_TOKENS = 20
ROUNDS = 2  # each thread runs its drafter this often, so the threads' forwards overlap
WAIT_S = 300  # a generous bound on a shared 2-core machine; no test asserts a time


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:target", device="cpu")


def speculative(zoo, kind: str, temperature: float, verifier=None) -> list[int]:
    target, tokenizer = zoo
    drafter = build_drafter(kind, target, tokenizer)
    return generate_speculative(target, drafter, tokenizer(PROMPT)["input_ids"], gamma=4, max_new_tokens=NEW_TOKENS,
                                temperature=temperature, seed=7, verifier=verifier).token_ids


def autoregressive(zoo, temperature: float) -> list[int]:
    target, tokenizer = zoo
    return generate_autoregressive(target, tokenizer(PROMPT)["input_ids"], max_new_tokens=NEW_TOKENS,
                                   temperature=temperature, seed=7).token_ids


def run_together(jobs: dict) -> dict:
    """Run each job ``ROUNDS`` times in a thread of its own, all started at once; -> name -> [output per round]."""
    start = threading.Barrier(len(jobs))
    results: dict = {name: [] for name in jobs}

    def work(name, job):
        start.wait()
        for _ in range(ROUNDS):
            try:
                results[name].append(job())
            except Exception as err:  # noqa: BLE001 - reported below with the thread's name
                results[name].append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=work, args=item, name=item[0]) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return results


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_threads_on_one_target_give_the_serial_outputs(zoo, temperature):
    serial = {kind: speculative(zoo, kind, temperature) for kind in KINDS}
    serial["autoregressive"] = autoregressive(zoo, temperature)
    if temperature == 0.0:
        assert all(out == serial["autoregressive"] for out in serial.values())  # greedy: every method is the target
    jobs = {kind: (lambda kind=kind: speculative(zoo, kind, temperature)) for kind in KINDS}
    jobs["autoregressive"] = lambda: autoregressive(zoo, temperature)
    together = run_together(jobs)
    for name, outputs in together.items():
        assert outputs == [serial[name]] * ROUNDS, name


def test_two_eagle_threads_and_tree_verification_give_the_serial_outputs(zoo):
    """Two runs of one kind (each its own EAGLE drafter) and token trees (EAGLE, Medusa) beside each other."""
    jobs = {"eagle-a": lambda: speculative(zoo, "eagle", 0.8), "eagle-b": lambda: speculative(zoo, "eagle", 0.8),
            "eagle-tree": lambda: speculative(zoo, "eagle", 0.0, verifier="tree-greedy"),
            "medusa-tree": lambda: speculative(zoo, "medusa", 0.0, verifier="tree-speculative")}
    serial = {"eagle-a": speculative(zoo, "eagle", 0.8), "eagle-tree": speculative(zoo, "eagle", 0.0, "tree-greedy"),
              "medusa-tree": speculative(zoo, "medusa", 0.0, "tree-speculative")}
    serial["eagle-b"] = serial["eagle-a"]
    for name, outputs in run_together(jobs).items():
        assert outputs == [serial[name]] * ROUNDS, name


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_hidden_states_are_what_the_head_read_and_no_hook_is_left(build):
    """forward(hidden=True): the logits are the model's own, the states those its output head turned into them."""
    model = build(layers=2, seed=0)
    head = model.get_output_embeddings()
    lm = CachedLM(model)
    ids = torch.tensor([5, 1, 7, 3, 9])
    plain = CachedLM(model).forward(ids)
    logits, states = lm.forward(ids, hidden=True)
    with torch.inference_mode():
        assert torch.equal(logits, plain) and torch.equal(head(states), logits)
        last, last_state = lm.forward(torch.tensor([4, 2]), last_only=True, hidden=True)
        assert last.shape[0] == last_state.shape[0] == 1 and torch.equal(head(last_state), last)
    assert not head._forward_pre_hooks and not head._forward_hooks  # nothing on the shared head sees other calls


def playground_outputs(zoo, drafters: tuple[str, ...], temperature: float, background: bool) -> list[list[int]]:
    target, tokenizer = zoo
    pgs = [Playground(target, tokenizer, prompt=PROMPT, drafter=d, temperature=temperature, max_new_tokens=16,
                      background=background) for d in drafters]
    beside = generate_autoregressive(target, tokenizer(PROMPT)["input_ids"], max_new_tokens=16, temperature=temperature)
    for pg in pgs:
        pg.wait()
    assert [pg.error for pg in pgs] == [None] * len(pgs)
    assert beside.token_ids == autoregressive_16(zoo, temperature)
    return [pg.last_output.token_ids for pg in pgs]


def autoregressive_16(zoo, temperature: float) -> list[int]:
    target, tokenizer = zoo
    return generate_autoregressive(target, tokenizer(PROMPT)["input_ids"], max_new_tokens=16,
                                   temperature=temperature).token_ids


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_two_playgrounds_on_one_target_give_the_serial_outputs(zoo, temperature):
    """Two widgets' worker threads (EAGLE, early exit), and a notebook cell's baseline beside them on the caller's."""
    drafters = ("eagle", "early-exit")
    serial = playground_outputs(zoo, drafters, temperature, background=False)
    assert playground_outputs(zoo, drafters, temperature, background=True) == serial


class Gate:
    """Holds a run inside its first propose until released, so a second run is certain to overlap it."""

    def __init__(self):
        self.inside, self.release = threading.Event(), threading.Event()

    def hold(self) -> None:
        self.inside.set()
        if not self.release.wait(WAIT_S):
            raise TimeoutError("the gate was never released")


class GatedWrapper(WrappedDrafter):
    def __init__(self, inner, gate: Gate):
        super().__init__(inner)
        self.gate = gate

    def propose(self, ids, gamma, to_probs, generator):
        self.gate.hold()
        return self.inner.propose(ids, gamma, to_probs, generator)


def while_held(zoo, first, second) -> tuple[list[int] | str, object]:
    """Start a run of ``first`` (gated) in a thread, call ``second()`` while it is held; -> (its output, second's).

    ``second`` returns a value or raises; what it raised is returned."""
    target, tokenizer = zoo
    gate = first.gate
    held: dict = {}

    def run():
        held["out"] = generate_speculative(target, first, tokenizer(PROMPT)["input_ids"], max_new_tokens=NEW_TOKENS,
                                           temperature=0.8, seed=7).token_ids

    thread = threading.Thread(target=run, name="held-run")
    thread.start()
    try:
        assert gate.inside.wait(WAIT_S), "the first run never reached its draft"
        try:
            result = second()
        except Exception as err:  # noqa: BLE001 - the caller asserts on it
            result = err
    finally:
        gate.release.set()
        thread.join(WAIT_S)
    return held.get("out", "the held run failed"), result


def refused_second_run(zoo):
    """One EAGLE drafter, a second run on it while a first holds it: (drafter, (first output, what the second did))."""
    target, tokenizer = zoo
    drafter = build_drafter("eagle", target)

    def second():
        return generate_speculative(target, drafter, tokenizer(PROMPT)["input_ids"], max_new_tokens=4)

    return drafter, while_held(zoo, GatedWrapper(drafter, Gate()), second)


def test_one_drafter_object_in_two_runs_at_once_is_refused_and_the_first_run_is_unharmed(zoo):
    target, tokenizer = zoo
    drafter, (first, second) = refused_second_run(zoo)
    assert isinstance(second, RuntimeError) and "build one drafter per thread" in str(second)
    assert "'eagle'" in str(second) and "held-run" in str(second)  # which drafter, and which run holds it
    assert first == speculative(zoo, "eagle", 0.8)
    # the claim was released: the same object serves the next run, sequentially
    again = generate_speculative(target, drafter, tokenizer(PROMPT)["input_ids"], max_new_tokens=NEW_TOKENS,
                                 temperature=0.8, seed=7).token_ids
    assert again == first


def test_a_shared_drafter_inside_two_wrappers_is_refused_too(zoo):
    target, tokenizer = zoo
    inner, gate = build_drafter("eagle", target), Gate()
    _, second = while_held(zoo, GatedWrapper(inner, gate), lambda: generate_speculative(
        target, HeuristicGamma(inner), tokenizer(PROMPT)["input_ids"], max_new_tokens=4))
    assert isinstance(second, RuntimeError) and "build one drafter per thread" in str(second)


def test_a_drafter_that_keeps_no_state_may_serve_two_runs_at_once(zoo):
    """Prompt lookup (and retrieval, whose datastore the registry shares) read only the sequence they are given."""
    target, tokenizer = zoo
    lookup, gate = PromptLookupDrafter(), Gate()
    ids = tokenizer(PROMPT)["input_ids"]
    serial = generate_speculative(target, lookup, ids, max_new_tokens=NEW_TOKENS, temperature=0.8, seed=7).token_ids
    first, second = while_held(zoo, GatedWrapper(lookup, gate), lambda: generate_speculative(
        target, lookup, ids, max_new_tokens=NEW_TOKENS, temperature=0.8, seed=7).token_ids)
    assert first == second == serial


def test_the_claim_is_released_when_a_run_fails(zoo):
    target, tokenizer = zoo
    broken = build_drafter("eagle", target)
    broken.propose = lambda *args: 1 / 0
    with pytest.raises(ZeroDivisionError):
        generate_speculative(target, broken, tokenizer(PROMPT)["input_ids"], max_new_tokens=4)
    del broken.propose
    assert generate_speculative(target, broken, tokenizer(PROMPT)["input_ids"], max_new_tokens=4).token_ids


SHARED_TABLE = ("recycling", "suffix", "suffix+recycling")  # token recycling's table belongs to the target


def test_drafters_with_a_per_target_table_give_the_target_in_threads_and_run_cleanly_when_sampling(zoo):
    """Token recycling keeps ONE table per target, across calls and threads, by design (its 'hot start'): threads
    on one target read and write it in whatever order they run, so their drafts, and so a sampled run's tokens
    for a fixed seed, depend on that order. What cannot change: greedy output is the target's own in every thread
    (the drafts are checked, never trusted), and sampled runs finish without error. Serial equality at T > 0 holds
    for every other drafter (the tests above); README and recycling's docstring say so."""
    greedy = autoregressive(zoo, 0.0)
    jobs = {kind: (lambda kind=kind: speculative(zoo, kind, 0.0)) for kind in SHARED_TABLE}
    jobs |= {f"{kind} T=0.8": (lambda kind=kind: speculative(zoo, kind, 0.8)) for kind in SHARED_TABLE}
    for name, outputs in run_together(jobs).items():
        assert all(isinstance(out, list) and out for out in outputs), (name, outputs)  # no error text
        if "T=" not in name:
            assert outputs == [greedy] * ROUNDS, name
