"""Token trees: one target forward scores every branch, the cache keeps only the accepted path,
greedy tree verification reproduces the target's greedy output, and the stochastic rule
(SpecInfer's multi-candidate speculative sampling) emits tokens with exactly the target's law."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.drafters import DraftTree, ModelDrafter
from specdec_lab.drafters.dynamic import HeuristicGamma
from specdec_lab.drafters.medusa import MedusaDrafter
from specdec_lab.core.lm import CachedLM
from specdec_lab.core.sampling import SamplingConfig
from specdec_lab.core.tree import ancestor_mask, depths, path_to
from specdec_lab.verifiers.tree import TreeGreedy, TreeSpeculative
from specdec_lab.models.zoo.heads import MedusaHeads

from conftest import BUILDERS, perturbed_copy, random_prompts, tiny_llama
from test_distribution import chi_square_pvalue

TOKENS = torch.tensor([5, 11, 12, 13, 14, 15])  # root 5, then a tree of five nodes
PARENTS = torch.tensor([-1, 0, 0, 1, 2, 3])  # 5 → {11, 12}; 11 → 13 → 15; 12 → 14


def test_tree_geometry():
    assert depths(PARENTS).tolist() == [0, 1, 1, 2, 2, 3]
    assert path_to(PARENTS, 5) == [0, 1, 3, 5]
    mask = ancestor_mask(PARENTS)
    assert mask[5].nonzero().flatten().tolist() == [0, 1, 3, 5]
    assert mask[4].nonzero().flatten().tolist() == [0, 2, 4]


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_one_tree_forward_equals_a_forward_per_path(arch):
    model = BUILDERS[arch](layers=2, seed=0)
    prefix = torch.tensor(random_prompts(1, low=7, high=7)[0])
    lm = CachedLM(model)
    lm.forward(prefix)
    tree_logits = lm.forward(TOKENS, parents=PARENTS)  # (6, V)
    for node in range(len(TOKENS)):
        alone = CachedLM(model)
        alone.forward(prefix)
        path_logits = alone.forward(TOKENS[path_to(PARENTS, node)])[-1]
        torch.testing.assert_close(tree_logits[node], path_logits, atol=1e-5, rtol=1e-5)
    # keep the prefix and the branch 5 → 12 → 14, then go on decoding as if only that branch was ever fed
    lm.keep(len(prefix), [len(prefix) + j for j in (0, 2, 4)])
    fresh = CachedLM(model)
    fresh.forward(torch.cat([prefix, TOKENS[[0, 2, 4]]]))
    torch.testing.assert_close(lm.forward(torch.tensor([7, 8])), fresh.forward(torch.tensor([7, 8])), atol=1e-5, rtol=1e-5)


class OracleTree:
    """Test drafter: the target's true greedy continuation hidden as the SECOND branch, decoys around it."""

    name, may_abstain, vocab_size, branches = "oracle-tree", False, None, True

    def __init__(self, target):
        self.target = target

    def propose(self, ids, gamma, to_probs, generator):
        raise AssertionError("a tree verifier must call propose_tree")

    def propose_tree(self, ids, branching, to_probs, generator):
        depth = len(branching)
        truth = generate_autoregressive(self.target, ids, max_new_tokens=depth).token_ids
        decoy = [(t + 1) % self.target.config.vocab_size for t in truth]
        tokens = decoy[:1] + truth + decoy[1:]  # branch A: decoy chain of the same depth; branch B: the truth
        parents = [-1] + [-1] + list(range(1, depth)) + [0] + list(range(depth + 1, 2 * depth - 1))
        return DraftTree(torch.tensor(tokens), torch.tensor(parents))

    def observe(self, verdict, hidden=None):
        pass


@pytest.mark.parametrize("verifier", [TreeGreedy(), TreeSpeculative()], ids=["greedy", "speculative"])
def test_tree_accepts_a_later_branch_and_keeps_only_it(verifier):
    target = tiny_llama(layers=2, seed=0)
    prompt = random_prompts(1, seed=3, low=6, high=6)[0]
    out = generate_speculative(target, OracleTree(target), prompt, gamma=4, max_new_tokens=20, verifier=verifier)
    reference = generate_autoregressive(target, prompt, max_new_tokens=20)
    assert out.token_ids == reference.token_ids
    assert all(step.n_accepted == min(4, 20 - step.context_len + len(prompt) - 1) for step in out.steps)
    tree = out.steps[0].tree
    assert tree["path"] == [1, 2, 3, 4] and tree["decisions"][0] == "rejected"
    assert out.stats.target_forwards == out.stats.steps + 1  # prefill + ONE forward per step


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("branching", [(2, 1, 1), (3, 2, 1), (1, 1, 1, 1)])
def test_tree_greedy_equals_autoregressive(arch, branching):
    target = BUILDERS[arch](layers=2, seed=0)
    drafter = ModelDrafter(perturbed_copy(target, noise=0.05))
    accepted = 0
    for verifier in (TreeGreedy(branching=branching), TreeSpeculative(branching=branching)):
        for prompt in random_prompts(3, seed=1):
            out = generate_speculative(target, drafter, prompt, gamma=4, max_new_tokens=24, verifier=verifier)
            assert out.token_ids == generate_autoregressive(target, prompt, max_new_tokens=24).token_ids
            assert out.stats.target_forwards == out.stats.steps + (len(prompt) > 1)
            accepted += out.stats.accepted
    assert accepted > 0


def test_medusa_heads_draft_linear_and_tree_and_stay_exact():
    target = tiny_llama(layers=2, seed=0)
    heads = MedusaHeads(hidden=32, n_heads=3)
    torch.manual_seed(5)
    for block in heads.blocks:
        torch.nn.init.normal_(block.weight, std=0.05)
    for verifier, gamma in ((None, 3), ("greedy", 5), (TreeGreedy(branching=(2, 2, 1)), 3), (TreeSpeculative(width=3), 3)):
        for prompt in random_prompts(3, seed=2):
            out = generate_speculative(target, MedusaDrafter(target, heads), prompt, gamma=gamma, max_new_tokens=16, verifier=verifier)
            assert out.token_ids == generate_autoregressive(target, prompt, max_new_tokens=16).token_ids
            assert max(len(s.draft) for s in out.steps) <= 3  # never more drafts than heads
            if len(prompt) == 1:
                assert out.steps[0].draft == []  # no hidden state before the first target forward


def first_token_frequencies(verifier, p_root, q, trials, seed=0):
    """Run the verifier alone on trees whose two top-level children are drawn i.i.d. from q."""
    g = torch.Generator().manual_seed(seed)
    V = p_root.shape[0]
    p = torch.stack([p_root, torch.full((V,), 1 / V), torch.full((V,), 1 / V)])  # rows: root, child 0, child 1
    counts = torch.zeros(V)
    for _ in range(trials):
        kids = torch.multinomial(q, 2, replacement=True, generator=g)
        tree = DraftTree(kids, torch.tensor([-1, -1]), torch.stack([q, q]))
        counts[verifier.verify(tree, p, g).tokens[0]] += 1
    return counts


class NoResidual(TreeSpeculative):
    """WRONG on purpose: after a rejected child it keeps trying the next one against the unchanged p."""

    name = "wrong-no-residual"

    def _try(self, tree, child, dist, generator):
        kept, a, u, _ = super()._try(tree, child, dist, generator)
        return kept, a, u, dist


@pytest.mark.stat
def test_multi_candidate_speculative_sampling_emits_the_target_law():
    p_root = torch.tensor([0.5, 0.3, 0.15, 0.05])
    q = torch.tensor([0.1, 0.2, 0.3, 0.4])  # a poor drafter: most drafts are rejected
    n = 6000
    good = first_token_frequencies(TreeSpeculative(), p_root, q, n)
    assert chisquare(good, p_root * n).pvalue > 1e-3
    bad = first_token_frequencies(NoResidual(), p_root, q, n)
    assert chisquare(bad, p_root * n).pvalue < 1e-6  # the test has the power to catch a wrong rule


@pytest.mark.stat
def test_tree_speculative_through_the_loop_has_the_target_law():
    target = tiny_llama(layers=1, seed=0, vocab=5, hidden=16, init=0.5)
    drafter = ModelDrafter(tiny_llama(layers=1, seed=7, vocab=5, hidden=16, init=0.5))
    assert chi_square_pvalue(target, drafter, SamplingConfig(1.0), TreeSpeculative(width=2)) > 1e-3


def test_tree_options_that_make_no_sense_are_refused():
    target = tiny_llama(layers=1, seed=0)
    linear_only = HeuristicGamma(ModelDrafter(perturbed_copy(target, 0.05)))
    with pytest.raises(ValueError, match="cannot branch"):
        generate_speculative(target, linear_only, [1, 2, 3], verifier=TreeGreedy())
    with pytest.raises(ValueError, match="width"):
        TreeGreedy(width=0)
    with pytest.raises(ValueError, match="branching"):
        TreeSpeculative(branching=(2, 0))
    with pytest.raises(ValueError, match="hidden size"):
        MedusaDrafter(target, MedusaHeads(hidden=16, n_heads=2))
