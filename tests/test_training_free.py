"""Training-free drafting (issue 37): Token Recycling, suffix automata (SAM-Decoding / SuffixDecoding), their cascade,
and trees sized by a machine's measured verification cost (Sequoia). Losslessness is checked here (greedy, chain and
tree) and in test_catalogue.py's exact-rows check, where the three drafters are listed."""

from __future__ import annotations

import random

import pytest
import torch

from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
from specdec_lab.drafters import FirstNonEmpty, RecyclingDrafter, SuffixDrafter
from specdec_lab.drafters.recycling import AdjacencyMatrix
from specdec_lab.drafters.suffix_automaton import StaticAutomaton, SuffixAutomaton
from specdec_lab.verifiers.tree import TreeGreedy, TreeSpeculative
from specdec_lab.verifiers.tree_shape import best_for_hardware, relative_cost, shapes, tree_nodes

from conftest import random_prompts, tiny_llama
from test_reproducibility import fingerprint

V = 12
NEW_DRAFTERS = ["recycling", "suffix", "suffix+recycling"]
VERIFIERS = ["greedy", "speculative", "block", "tree-greedy", TreeGreedy(branching=(3, 2, 1)),
             TreeSpeculative(branching=(2, 2, 1))]


def occurrences(docs, s):
    return sum(1 for d in docs for i in range(len(d) - len(s) + 1) if d[i:i + len(s)] == s)


def test_static_automaton_finds_the_longest_suffix_and_ranks_continuations_by_frequency():
    rng = random.Random(0)
    docs = [[rng.randrange(4) for _ in range(rng.randrange(1, 30))] for _ in range(8)]
    sam = StaticAutomaton(docs)
    assert sam.tokens == sum(map(len, docs)) and sam.states <= 2 * sam.tokens
    for _ in range(300):
        query = [rng.randrange(4) for _ in range(rng.randrange(1, 12))]
        state, matched = 0, 0
        for token in query:
            state, matched = sam.match(state, matched, token)
        longest = max(n for n in range(len(query) + 1) if n == 0 or occurrences(docs, query[len(query) - n:]))
        assert matched == longest, query
        suffix = query[len(query) - matched:] if matched else []
        follow = {t: occurrences(docs, suffix + [t]) for t in range(4)}
        total = sum(follow.values())
        kids = sam.children(state)
        assert [t for t, _, _ in kids] == sorted((t for t in follow if follow[t]), key=lambda t: (-follow[t], t))
        assert all(abs(p - follow[t] / total) <= 0.5 / 255 + 1e-12 for t, p, _ in kids)


def test_online_automaton_matches_only_earlier_text():
    """The dynamic source: the longest suffix of x_1..x_L that occurs in x_1..x_{L−1} (so a token followed it)."""
    rng = random.Random(1)
    seq = [rng.randrange(3) for _ in range(60)]
    drafter = SuffixDrafter()
    for length in range(1, len(seq) + 1):
        x = seq[:length]
        source, matched = drafter.matched(torch.tensor(x))
        earlier = x[:-1]
        longest = max(n for n in range(length) if n == 0 or any(earlier[i:i + n] == x[length - n:]
                                                               for i in range(len(earlier) - n + 1)))
        assert (source, matched) == ("own", longest), x
    online = SuffixAutomaton()
    for t in seq:
        online.extend(t)
    assert len(online.length) <= 2 * len(seq)


def test_suffix_draft_length_follows_the_match_and_weak_branches_are_cut():
    text = torch.tensor([5, 6, 7, 8, 9, 1, 2, 5, 6, 7, 8, 9, 1, 3, 5, 6, 7])  # "5 6 7" matched, 3 tokens
    factor_one = SuffixDrafter(max_spec_factor=1.0)
    assert factor_one.propose(text, 8, None, None).tokens.tolist() == [8, 9, 1]  # ⌊3 · 1⌋ tokens
    assert SuffixDrafter(max_spec_factor=2.0).propose(text, 8, None, None).tokens.tolist() == [8, 9, 1, 3, 5, 6]
    assert len(SuffixDrafter(min_match=4).propose(text, 8, None, None)) == 0  # too short a match: abstain
    # after "5 6 7" came "8 9 1 3 .." (most recent) and "8 9 1 2 ..": one path to depth 3, then two branches of 1/2
    tree = SuffixDrafter(max_spec_factor=2.0).propose_tree(text, (2, 2, 2, 2), None, None)
    assert tree.tokens.tolist() == [8, 9, 1, 3, 2] and tree.parents.tolist() == [-1, 0, 1, 2, 2]
    cut = SuffixDrafter(max_spec_factor=2.0, min_token_prob=0.6).propose_tree(text, (2, 2, 2, 2), None, None)
    assert cut.tokens.tolist() == [8, 9, 1]  # a branch of probability 1/2 < 0.6 is not drafted


def test_suffix_drafts_from_the_corpus_when_it_matches_longer():
    corpus = StaticAutomaton([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 7, 7], [1, 2, 3, 4, 5, 8]])
    ids = torch.tensor([9, 1, 2, 3, 4])  # its own past has no earlier 4; the corpus matches "1 2 3 4"
    drafter = SuffixDrafter(corpus)
    assert drafter.matched(ids) == ("corpus", 4)
    # P(5 | 1 2 3 4) = 2/3, then 6 and 8 at 1/2 each (a tie: the smaller id), then the document ends
    assert drafter.propose(ids, 4, None, None).tokens.tolist() == [5, 6] and drafter.used["corpus"] == 1
    assert SuffixDrafter(corpus, min_token_prob=0.5).propose(ids, 4, None, None).tokens.tolist() == [5]  # 1/3 < 0.5
    tree = SuffixDrafter(corpus).propose_tree(ids, (2, 2), None, None)
    assert tree.tokens.tolist() == [5, 7, 6, 8, 7] and tree.parents.tolist() == [-1, -1, 0, 0, 1]


@pytest.mark.parametrize("name", NEW_DRAFTERS)
def test_greedy_output_is_the_targets_in_fp32_chain_and_tree(name):
    target = tiny_llama(seed=0, vocab=V, init=0.5)
    drafter = build_drafter(name, target)
    for member in drafter.drafters if isinstance(drafter, FirstNonEmpty) else [drafter]:
        if isinstance(member, RecyclingDrafter):
            member.forget()  # a fresh table: the cold start's empty drafts run too
    for verifier in VERIFIERS:
        accepted = drafted = 0
        for prompt in random_prompts(4, seed=1):
            prompt = [t % V for t in prompt]
            reference = generate_autoregressive(target, prompt, max_new_tokens=24).token_ids
            out = generate_speculative(target, drafter, prompt, gamma=4, max_new_tokens=24, verifier=verifier)
            assert out.token_ids == reference, (name, verifier)
            accepted, drafted = accepted + out.stats.accepted, drafted + out.stats.drafted
        assert 0 < accepted < drafted, (name, verifier)  # both paths of the rollback ran


def test_recycling_sees_the_prefill_and_every_scored_token_rejected_ones_included():
    target = tiny_llama(seed=2, vocab=V, init=0.5)
    drafter = RecyclingDrafter(target, tree=(3, 2))
    drafter.forget()
    calls = []
    real = drafter.observe_scores
    drafter.observe_scores = lambda tokens, logits: calls.append((tokens.tolist(), logits.clone())) or real(  # noqa
        tokens, logits)
    prompt = [1, 4, 2, 4, 7, 3]
    out = generate_speculative(target, drafter, prompt, gamma=2, max_new_tokens=12, verifier="tree-greedy")
    assert calls[0][0] == prompt[:-1]  # the prefill: every prompt token but the root
    with torch.no_grad():
        fresh = target(torch.tensor([prompt])).logits[0]
    assert torch.allclose(calls[0][1], fresh[:-1], atol=1e-5)
    rejected = 0
    for step, (tokens, logits) in zip(out.steps, calls[1:]):
        tree_tokens = step.tree["tokens"] if step.tree else step.draft
        assert tokens[1:] == list(tree_tokens) and logits.shape[0] == len(tokens)
        rejected += sum(d != "accepted" for d in (step.tree or {}).get("decisions") or [])
    assert rejected > 0  # nodes not accepted (rejected or unchecked) were among the rows written
    last_tokens, last_logits = calls[-1]
    final = {t: i for i, t in enumerate(last_tokens)}
    for token, row in final.items():  # the last write of each token is its row now
        assert drafter.matrix.next[token].tolist() == last_logits[row].topk(8).indices.tolist()


def test_recycling_matrix_persists_per_target_and_forget_restores_the_trace():
    target, other = tiny_llama(seed=3, vocab=V, init=0.5), tiny_llama(seed=4, vocab=V, init=0.5)
    drafter = build_drafter("recycling", target)
    assert build_drafter("recycling", target).matrix is drafter.matrix  # one table per target, by design
    assert build_drafter("recycling", other).matrix is not drafter.matrix
    drafter.forget()
    run = lambda: generate_speculative(target, drafter, [1, 2, 3, 1, 2], gamma=3, max_new_tokens=20,  # noqa: E731
                                       temperature=0.9, top_p=0.95, seed=7, verifier="speculative")
    first, hot = run(), run()
    assert fingerprint(first) != fingerprint(hot)  # the second call starts from the first call's table (hot start)
    drafter.forget()
    assert not bool(drafter.matrix.known.any())
    again = run()
    assert again.token_ids == first.token_ids and fingerprint(again) == fingerprint(first)


def test_matrix_and_automaton_fit_in_ten_megabytes_for_smollm2():
    from specdec_lab.models.trained import DATASTORE
    from specdec_lab.registry import _smollm2_corpus

    if not DATASTORE.exists():
        pytest.skip("SmolLM2's datastore is not shipped in this checkout")
    matrix = AdjacencyMatrix(49152, 8)  # SmolLM2's vocabulary × TR's k
    assert matrix.nbytes == 49152 * 8 * 4 + 49152  # 1.6 MB
    corpus = _smollm2_corpus()
    assert corpus.tokens > 200_000
    assert matrix.nbytes + corpus.nbytes <= 10 * 2**20, (matrix.nbytes, corpus.nbytes)


# Hardware-aware sizing: the same acceptance, two machines.
A = {(d, r): rate for d in range(1, 9) for r, rate in enumerate([0.55, 0.15, 0.08, 0.05, 0.03, 0.02, 0.01, 0.01])}
CPU = {1: 1.0, 2: 1.03, 4: 1.08, 8: 1.15, 16: 1.30, 32: 1.7, 64: 2.6}  # this machine's kind of t(k)/t(1) (issue 37)
GPU = {1: 1.0, 2: 1.0, 4: 1.0, 8: 1.01, 16: 1.02, 32: 1.05, 64: 1.12}  # flat: a GPU's forward is memory-bound


def test_relative_cost_interpolates_and_extends():
    assert relative_cost(CPU, 8) == 1.15 and relative_cost(CPU, 12) == pytest.approx(1.225)
    assert relative_cost(CPU, 96) == pytest.approx(2.6 + 0.9 / 32 * 32)
    with pytest.raises(ValueError, match="k = 1"):
        relative_cost({2: 1.0}, 3)


def test_every_shape_within_the_budget_is_searched():
    found = list(shapes(10, 3, 3))
    assert len(found) == len(set(found)) and all(tree_nodes(b) <= 10 for b in found)
    assert (3, 2) in found and (1, 1, 1) in found and (3, 3) not in found  # 3 + 9 = 12 nodes > 10


def test_a_flatter_verification_cost_chooses_a_larger_tree_and_a_longer_chain():
    cpu_tree, _, cpu_speed = best_for_hardware(A, CPU, c=0.02)
    gpu_tree, _, gpu_speed = best_for_hardware(A, GPU, c=0.02)
    assert tree_nodes(gpu_tree) > tree_nodes(cpu_tree) and gpu_speed > cpu_speed
    cpu_chain, _, _ = best_for_hardware(A, CPU, c=0.02, chain=True)
    gpu_chain, _, _ = best_for_hardware(A, GPU, c=0.02, chain=True)
    assert set(cpu_chain) == set(gpu_chain) == {1} and len(gpu_chain) >= len(cpu_chain)
    expensive, _, _ = best_for_hardware(A, CPU, c=0.5, chain=True)  # a costly drafter: shorter chains
    assert len(expensive) < len(cpu_chain)


def test_settings_translate_suffix_to_vllms_suffix_method_and_say_what_has_no_equivalent():
    from specdec_lab.bench.export import ServeSettings, to_transformers, to_vllm

    vllm = to_vllm(ServeSettings("suffix", "greedy", gamma=6))
    assert vllm.config["speculative_config"] == {"method": "suffix", "num_speculative_tokens": 6,
                                                 "suffix_decoding_max_spec_factor": 1.0,
                                                 "suffix_decoding_min_token_prob": 0.1}
    assert any("corpus" in m for m in vllm.missing)
    recycling = to_vllm(ServeSettings("recycling", "greedy"))
    assert "method" not in recycling.config["speculative_config"] and any("top-k" in m for m in recycling.missing)
    for name in NEW_DRAFTERS:
        assert any("transformers has no" in m for m in to_transformers(ServeSettings(name, "greedy")).missing)
