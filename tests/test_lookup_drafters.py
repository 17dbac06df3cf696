"""Training-free drafters (prompt lookup, retrieval): exact drafts on hand-made sequences, trees, greedy equality."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

import specdec_lab
from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.drafters.prompt_lookup import PromptLookupDrafter
from specdec_lab.drafters.retrieval import RetrievalDrafter

from conftest import tiny_llama

PROMPTS = [[5, 6, 7, 5, 6, 7, 5, 6], [1, 2, 3, 4, 1, 2, 3, 4], [10, 20, 30, 40, 50, 10, 20], [8, 8, 9, 8, 8]]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run many times faster on one thread, above all on a busy machine; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def target():
    return tiny_llama(seed=0)


def ids(*tokens: int) -> torch.Tensor:
    return torch.tensor(tokens, dtype=torch.long)


def propose(drafter, sequence, gamma: int) -> list[int]:
    return drafter.propose(torch.as_tensor(sequence), gamma, None, None).tokens.tolist()


def reference_lookup(sequence: list[int], gamma: int, max_ngram: int, min_ngram: int) -> list[int]:
    """Prompt lookup by brute force: longest n, then the latest start i with a token after the match;
    the copy runs on past the end of the sequence (LZ77: each copied token extends the source)."""
    for n in range(max_ngram, min_ngram - 1, -1):
        for i in reversed(range(len(sequence) - n)):
            if sequence[i : i + n] == sequence[-n:]:
                extended = list(sequence)
                for k in range(gamma):
                    extended.append(extended[i + n + k])
                return extended[len(sequence):]
    return []


def tree_paths(tree) -> list[list[int]]:
    """Every root-to-node token path of a DraftTree (so also every prefix of every branch)."""
    paths: list[list[int]] = []
    for j, parent in enumerate(tree.parents.tolist()):
        paths.append((paths[parent] if parent >= 0 else []) + [int(tree.tokens[j])])
    return paths


def check_tree_shape(tree, branching: tuple[int, ...]) -> None:
    """Parents first, siblings distinct, depth <= len(branching), at most branching[d] children at depth d."""
    parents = tree.parents.tolist()
    tokens = tree.tokens.tolist()
    assert len(parents) == len(tokens)
    assert tree.q is None and tree.tokens.dtype == tree.parents.dtype == torch.long
    depth = {-1: 0}
    children: dict[int, list[int]] = {}
    for j, parent in enumerate(parents):
        assert -1 <= parent < j
        depth[j] = depth[parent] + 1
        assert depth[j] <= len(branching)
        children.setdefault(parent, []).append(tokens[j])
    for parent, kids in children.items():
        assert len(kids) == len(set(kids))
        assert len(kids) <= branching[depth[parent]]


# ---- prompt lookup ------------------------------------------------------------------------------


def test_prompt_lookup_copies_what_followed_the_match():
    drafter = PromptLookupDrafter(max_ngram=2)
    assert propose(drafter, [1, 2, 3, 9, 1, 2], 4) == [3, 9, 1, 2]
    assert propose(drafter, [1, 2, 3, 9, 1, 2], 2) == [3, 9]
    assert propose(drafter, [1, 2, 3, 9, 1, 2], 7) == [3, 9, 1, 2, 3, 9, 1]  # past the end the copy repeats


def test_prompt_lookup_fills_the_draft_inside_a_loop():
    # the most recent match of "5" sits right before the suffix; the overlapping copy still drafts γ tokens
    assert propose(PromptLookupDrafter(max_ngram=1), [4, 5, 5, 5], 4) == [5, 5, 5, 5]
    assert propose(PromptLookupDrafter(max_ngram=2), [8, 6, 7, 6, 7], 5) == [6, 7, 6, 7, 6]


def test_prompt_lookup_longest_ngram_beats_a_more_recent_shorter_match():
    sequence = [7, 1, 2, 3, 5, 2, 4, 1, 2]  # "1 2" at 1 (then 3); "2" more recently at 5 (then 4)
    assert propose(PromptLookupDrafter(max_ngram=2), sequence, 3) == [3, 5, 2]
    assert propose(PromptLookupDrafter(max_ngram=1), sequence, 3) == [4, 1, 2]


def test_prompt_lookup_uses_the_most_recent_occurrence():
    assert propose(PromptLookupDrafter(max_ngram=2), [1, 2, 3, 1, 2, 4, 1, 2], 2) == [4, 1]


def test_prompt_lookup_without_a_match_proposes_nothing():
    drafter = PromptLookupDrafter()
    for sequence in ([1, 2, 3, 4], [5]):
        draft = drafter.propose(torch.tensor(sequence), 4, None, None)
        assert len(draft) == 0 and draft.tokens.dtype == torch.long and draft.q is None
    assert propose(PromptLookupDrafter(max_ngram=3, min_ngram=2), [1, 2, 3, 4, 2], 4) == []  # only a 1-gram matches
    assert len(drafter.propose_tree(ids(1, 2, 3, 4), (3, 2), None, None)) == 0


def test_prompt_lookup_equals_brute_force_and_respects_gamma():
    g = torch.Generator().manual_seed(0)
    drafter = PromptLookupDrafter(max_ngram=3, min_ngram=1)
    for trial in range(200):
        sequence = torch.randint(0, 4, (int(torch.randint(1, 30, (1,), generator=g)),), generator=g).tolist()
        gamma = 1 + trial % 7
        draft = propose(drafter, sequence, gamma)
        assert draft == reference_lookup(sequence, gamma, 3, 1)
        assert len(draft) <= gamma


def test_prompt_lookup_tree_merges_continuations_into_a_trie():
    sequence = ids(1, 2, 3, 9, 1, 2, 5, 7, 1, 2, 3, 4, 1, 2)  # "1 2" followed by 3 4 1 / 5 7 1 / 3 9 1, latest first
    tree = PromptLookupDrafter(max_ngram=2).propose_tree(sequence, (3, 2, 2), None, None)
    assert tree.tokens.tolist() == [3, 4, 1, 5, 7, 1, 9, 1]
    assert tree.parents.tolist() == [-1, 0, 1, -1, 3, 4, 0, 6]
    capped = PromptLookupDrafter(max_ngram=2).propose_tree(sequence, (3, 1), None, None)  # one child per root child
    assert tree_paths(capped) == [[3], [3, 4], [5], [5, 7]]
    two = PromptLookupDrafter(max_ngram=2).propose_tree(sequence, (2, 2), None, None)  # two continuations only
    assert tree_paths(two) == [[3], [3, 4], [5], [5, 7]]


@pytest.mark.parametrize("branching", [(1,), (3,), (2, 2), (4, 2, 1), (3, 3, 3, 3)])
def test_prompt_lookup_tree_shape_on_random_sequences(branching):
    g = torch.Generator().manual_seed(1)
    drafter = PromptLookupDrafter()
    for _ in range(40):
        sequence = torch.randint(0, 5, (24,), generator=g)
        tree = drafter.propose_tree(sequence, branching, None, None)
        check_tree_shape(tree, branching)
        assert sum(1 for j in range(len(tree)) if j not in tree.parents.tolist()) <= branching[0]  # leaves
        chain = propose(drafter, sequence, len(branching))
        assert (len(tree) == 0) == (chain == [])
        if chain:
            assert chain[0] == int(tree.tokens[0])  # the tree's first branch starts like the chain draft
        text = sequence.tolist()
        for path in tree_paths(tree):  # every branch is text that followed a match, copied on periodically (LZ77)
            assert any([text[i + k % (len(text) - i)] for k in range(len(path))] == path for i in range(1, len(text)))


# ---- retrieval ----------------------------------------------------------------------------------


def test_retrieval_follows_the_most_frequent_child():
    drafter = RetrievalDrafter([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 6], [2, 3, 4, 7]], max_ngram=2)
    # after "1 2": 3 4 / 3 5 / 6 -> 3 (twice), then a tie 4 vs 5 -> the smaller id
    assert propose(drafter, [9, 1, 2], 3) == [3, 4]
    assert propose(drafter, [9, 1, 2], 1) == [3]
    # after "2" alone (max_ngram=1): 3 4 / 3 5 / 6 / 3 4 7 -> 3, 4, 7
    unigrams = RetrievalDrafter([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 6], [2, 3, 4, 7]], max_ngram=1)
    assert propose(unigrams, [2], 4) == [3, 4, 7]


def test_retrieval_longest_suffix_wins_over_a_more_frequent_shorter_one():
    drafter = RetrievalDrafter([[5, 2, 8], [6, 2, 8], [7, 2, 8], [1, 2, 3]], max_ngram=2)
    assert propose(drafter, [1, 2], 2) == [3]
    assert propose(drafter, [4, 2], 2) == [8]  # "4 2" is not stored; "2" mostly precedes 8


def test_retrieval_stays_inside_a_document_and_caps_candidates():
    assert propose(RetrievalDrafter([[1, 2], [3, 4]]), [1], 3) == [2]  # not 2 3 4 across the boundary
    store = [[1, 5], [1, 6], [1, 6]]
    assert propose(RetrievalDrafter(store), [1], 2) == [6]
    assert propose(RetrievalDrafter(store, max_candidates=1), [1], 2) == [5]  # the first occurrence is kept


def test_retrieval_without_a_match_proposes_nothing_and_respects_gamma():
    drafter = RetrievalDrafter(list(range(20)))
    draft = drafter.propose(ids(50, 60), 4, None, None)
    assert len(draft) == 0 and draft.tokens.dtype == torch.long and draft.q is None
    assert len(drafter.propose_tree(ids(50, 60), (2, 2), None, None)) == 0
    for gamma in range(1, 9):
        assert propose(drafter, [3, 4], gamma) == list(range(5, 5 + gamma))


def test_retrieval_accepts_every_datastore_layout():
    expected = [3, 4]
    for store in ([1, 2, 3, 4], torch.tensor([1, 2, 3, 4]), torch.tensor([[1, 2, 3, 4]]), [torch.tensor([1, 2, 3, 4])]):
        assert propose(RetrievalDrafter(store), [1, 2], 2) == expected


def test_retrieval_tree_keeps_the_most_frequent_children():
    drafter = RetrievalDrafter([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3, 5], [1, 2, 6, 1], [1, 2, 7]], max_ngram=2)
    tree = drafter.propose_tree(ids(1, 2), (2, 1), None, None)
    assert tree.tokens.tolist() == [3, 6, 5, 1]  # 3 (x3) then 6 (tie with 7, smaller id); under 3: 5 (x2)
    assert tree.parents.tolist() == [-1, -1, 0, 1]
    check_tree_shape(tree, (2, 1))
    wide = drafter.propose_tree(ids(1, 2), (3, 2, 1), None, None)
    check_tree_shape(wide, (3, 2, 1))
    assert tree_paths(wide) == [[3], [6], [7], [3, 5], [3, 4], [6, 1]]  # breadth first: parents first


def test_retrieval_from_texts_with_the_zoo_tokenizer():
    tok = AutoTokenizer.from_pretrained(Path(specdec_lab.__file__).parent / "models" / "zoo" / "models" / "tokenizer")
    text = "the cat sat on the mat and the dog sat on the rug"
    drafter = RetrievalDrafter.from_texts(text, tok)
    tokens = tok(text, add_special_tokens=False)["input_ids"]
    k = len(tok("the cat sat", add_special_tokens=False)["input_ids"])
    assert propose(drafter, tokens[:k], 3) == tokens[k : k + 3]


# ---- through the real loop --------------------------------------------------------------------


def test_prompt_lookup_greedy_equals_autoregressive(target):
    accepted = 0
    for prompt in PROMPTS:
        ref = generate_autoregressive(target, prompt, max_new_tokens=32).token_ids
        for gamma in (1, 3, 6):
            out = generate_speculative(
                target, PromptLookupDrafter(), prompt, gamma=gamma, max_new_tokens=32, temperature=0.0
            )
            assert out.token_ids == ref
            assert all(len(step.draft) <= gamma for step in out.steps)
            assert out.settings["drafter"] == "prompt-lookup"
            accepted += out.stats.accepted
    assert accepted > 0


def test_retrieval_greedy_equals_autoregressive_and_is_accepted_a_lot(target):
    refs = {tuple(p): generate_autoregressive(target, p, max_new_tokens=32).token_ids for p in PROMPTS}
    drafter = RetrievalDrafter([list(p) + out for p, out in refs.items()])  # the model's own text, one document each
    accepted = drafted = 0
    for prompt in PROMPTS:
        for gamma in (2, 5):
            out = generate_speculative(target, drafter, prompt, gamma=gamma, max_new_tokens=32, temperature=0.0)
            assert out.token_ids == refs[tuple(prompt)]
            accepted, drafted = accepted + out.stats.accepted, drafted + out.stats.drafted
    assert accepted / drafted > 0.7


# ---- bad options --------------------------------------------------------------------------------

BAD = [
    (PromptLookupDrafter, dict(max_ngram=0), "max_ngram must be >= 1 .*n-gram size of 0"),
    (PromptLookupDrafter, dict(min_ngram=0), "min_ngram must be >= 1"),
    (PromptLookupDrafter, dict(max_ngram=2.5), "max_ngram must be an int"),
    (PromptLookupDrafter, dict(max_ngram=True), "max_ngram must be an int"),
    (PromptLookupDrafter, dict(max_ngram=2, min_ngram=3), r"min_ngram \(3\) must be <= max_ngram \(2\)"),
    (RetrievalDrafter, dict(datastore_ids=[]), "datastore_ids is empty"),
    (RetrievalDrafter, dict(datastore_ids=[[], []]), "datastore_ids is empty"),
    (RetrievalDrafter, dict(datastore_ids=[[5], [6]]), "datastore_ids has no 1-gram followed by a token"),
    (RetrievalDrafter, dict(datastore_ids=[1.0, 2.0]), "datastore_ids must hold"),
    (RetrievalDrafter, dict(datastore_ids=[-1, 2]), "datastore_ids must hold"),
    (RetrievalDrafter, dict(datastore_ids=torch.tensor([1.0, 2.0])), "datastore_ids must hold integer"),
    (RetrievalDrafter, dict(datastore_ids="1 2 3"), "datastore_ids must be token ids"),
    (RetrievalDrafter, dict(datastore_ids=[1, 2, 3], max_ngram=0), "max_ngram must be >= 1"),
    (RetrievalDrafter, dict(datastore_ids=[1, 2, 3], min_ngram=5), r"min_ngram \(5\) must be <= max_ngram \(4\)"),
    (RetrievalDrafter, dict(datastore_ids=[1, 2, 3], max_candidates=0), "max_candidates must be an int >= 1"),
]


@pytest.mark.parametrize("cls, kwargs, match", BAD, ids=[f"{c.__name__}-{k}"[:60] for c, k, _ in BAD])
def test_bad_options_name_the_option(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("branching", [(), (2, 0), (1.5,)])
def test_bad_branching_is_refused(branching):
    for drafter in (PromptLookupDrafter(), RetrievalDrafter([1, 2, 3])):
        with pytest.raises(ValueError, match="branching must be"):
            drafter.propose_tree(ids(1, 2, 1), branching, None, None)
