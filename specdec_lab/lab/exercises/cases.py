"""The exercises' cases, as data: per exercise a list of Case(args, right answer, hint), in the order they are tried.

The order matters: the runner stops at the first miss, so each usual mistake should first fail on the case whose hint
speaks to it (α = 0 for a forgotten cost term, a tie for the smaller γ, a long draft on a CPU for v > 1). The right
answers come from the library's own functions; a predicate stands in where several answers are right (a token the
drafter never proposes may get any acceptance probability in [0, 1]).
"""

from __future__ import annotations

import torch

from .runner import IDS, ROW, TRUTH, WHOLE, Case, Exercise, number


def _row(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# -- 00 start here: the acceptance test -------------------------------------------------------------------------

def acceptance_cases() -> list[Case]:
    from ...core.theory import accept_probability as library

    cases = [  # (p(x), q(x), what is special), p = q first: there p·q and min(p, q) differ from the answer, 1 doesn't
        (0.45, 0.45, "p = q: the drafter proposes x exactly as often as the target says it"),
        (0.6, 0.3, "the target likes x more than the drafter does (p > q): a probability is at most 1"),
        (0.2, 0.5, "the drafter likes x more than the target does (q > p): x must sometimes be rejected"),
        (0.0, 0.4, "the target never says x (p = 0)"),
        (0.05, 0.8, "q much larger than p: x is proposed far more often than the target says it"),
        (0.9, 1.0, "a drafter that is sure of x (q = 1) and a target that nearly is"),
    ]
    return [Case((p_x, q_x), float(library(torch.tensor(p_x), torch.tensor(q_x))), why) for p_x, q_x, why in cases]


# -- 01 why decoding is slow: the bytes of one forward ---------------------------------------------------------

def weight_read_cases() -> list[Case]:
    from ...bench.costmodel import HARDWARE

    cases = [  # (parameters, bytes per number, hardware, what is special)
        (6.7e9, 2, HARDWARE["H100-SXM"], "a 7B model in bf16 (2 bytes a number); the answer is in milliseconds"),
        (6.7e9, 4, HARDWARE["A100-80GB"], "the same model in fp32: 4 bytes a number"),
        (1.345e8, 2, HARDWARE["laptop CPU"], "a small model on a laptop CPU's bandwidth (bytes per second)"),
        (7.0e10, 2, HARDWARE["RTX 4090"], "a 70B model: every parameter's bytes are read once"),
    ]
    return [Case((params, b, hw.bandwidth), 1000 * params * b / hw.bandwidth, f"{why} (bandwidth of {hw.name})")
            for params, b, hw, why in cases]


# -- 02 draft then verify: the greedy rule --------------------------------------------------------------------

def greedy_prefix_cases() -> list[Case]:
    cases = [  # p_draft at T = 0: 1.0 where the draft is the target's argmax, 0.0 elsewhere
        ([1.0, 1.0, 0.0, 1.0], "a draft that matches again after a miss: the miss ends the accepted prefix"),
        ([0.0, 1.0, 1.0], "the first draft is already wrong: no draft is kept, whatever follows"),
        ([1.0, 1.0, 1.0], "every draft matches: nothing ends the prefix early"),
        ([1.0, 0.0], "one match, then a miss: the rejected draft is not counted"),
        ([], "an empty draft: there is nothing to keep"),
    ]
    return [Case((p_draft,), next((j for j, p in enumerate(p_draft) if p < 1.0), len(p_draft)), why)
            for p_draft, why in cases]


# -- 03 speculative sampling math: the two kernels ------------------------------------------------------------

def kernels_cases() -> list[Case]:
    from ...core.theory import accept_probability as library_accept
    from ...core.theory import residual as library_residual

    pairs = [  # (p, q, what is special)
        ([0.5, 0.2, 0.1, 0.1, 0.1], [0.2, 0.4, 0.1, 0.25, 0.05], "p and q differ in both directions"),
        ([0.05, 0.05, 0.6, 0.2, 0.1], [0.3, 0.3, 0.1, 0.2, 0.1], "the target puts its mass where the drafter does not"),
        ([0.25, 0.25, 0.25, 0.25, 0.0], [0.1, 0.2, 0.3, 0.2, 0.2], "a token the target never says (p(x) = 0)"),
    ]
    cases = []
    for p, q, why in pairs:
        p, q = _row(p), _row(q)
        cases += [Case((p, q), library_accept(p, q), f"p = {_list(p)}, q = {_list(q)}: {why}", 0, "(p, q)"),
                  Case((p, q), library_residual(p, q), f"p = {_list(p)}, q = {_list(q)}: {why}", 1, "(p, q)")]

    # q(x) = 0: the drafter never proposes x, so p(x)/q(x) divides by zero (and 0/0 is NaN). Where p(x) > 0 the limit
    # of min(1, p/q) is 1; where p(x) = 0 too, x is never drafted and any probability in [0, 1] will do.
    p0, q0 = _row([0.4, 0.3, 0.3, 0.0, 0.0]), _row([0.5, 0.5, 0.0, 0.0, 0.0])
    limit, free = library_accept(p0, q0), (p0 == 0) & (q0 == 0)  # free: never drafted, never said

    def accepts_like_the_limit(got: torch.Tensor) -> bool:
        return (torch.allclose(got[~free], limit[~free], rtol=0.0, atol=1e-9)
                and bool(((got[free] >= 0) & (got[free] <= 1)).all()))

    why = (f"p = {_list(p0)}, q = {_list(q0)}: q(x) = 0 for some tokens (the drafter never proposes them), so "
           "p(x)/q(x) divides by zero there; every token still needs a probability in [0, 1]")
    cases += [Case((p0, q0), accepts_like_the_limit, why, 0, "(p, q)"),
              Case((p0, q0), library_residual(p0, q0), why, 1, "(p, q)")]

    # p = q: α = 1, a rejection never happens, and max(0, p − q) is 0 everywhere: normalising it divides 0 by 0. The
    # kernel must still return a distribution (the library returns p; any distribution is right here).
    p = _row([0.1, 0.2, 0.3, 0.25, 0.15])  # no zero: this case is about the residual alone

    def is_a_distribution(got: torch.Tensor) -> bool:
        return bool((got >= 0).all()) and abs(float(got.sum()) - 1.0) <= 1e-9

    why = (f"p = q = {_list(p)}: max(0, p − q) is 0 for every token, so dividing by its sum divides by zero; no draft "
           "is ever rejected here, but the residual must still be a distribution (no NaN)")
    cases += [Case((p, p.clone()), library_accept(p, p), why, 0, "(p, q)"),
              Case((p, p.clone()), is_a_distribution, why, 1, "(p, q)")]
    return cases


def _list(row: torch.Tensor) -> str:
    return "[" + ", ".join(f"{x:g}" for x in row.tolist()) + "]"


# -- 03 speculative sampling math: the bug hunt -------------------------------------------------------------

def bug_hunt_cases() -> list[Case]:
    from ...verifiers import SpeculativeSampling
    from ...verifiers.block import BlockVerification
    from ..bug_lab import Lab, changes_the_law as reference, suspects

    labs = [(Lab(), "the lab of the notebook"),
            (Lab(seed=0), "a lab where one bug moves the law by less than 0.01 in TV"),
            (Lab(vocab=4, temperature=1.0, top_k=2, seed=9), "a 4-token lab at T = 1")]
    cases = []
    for lab, why in labs:
        verifiers = list(suspects(lab).items()) + [("speculative sampling", SpeculativeSampling()),
                                                   ("block", BlockVerification())]
        cases += [Case((lab, verifier), reference(lab, verifier), f"the verifier {name!r} in {why}",
                       shown=f"(lab, {name!r})") for name, verifier in verifiers]
    return cases


# -- 04 independent drafters: the best draft length ----------------------------------------------------------

def best_gamma_cases() -> list[Case]:
    from ...core.theory import best_gamma

    cases = [  # (α, c, max γ, what is special)
        (0.5, 0.3, 16, "a costly drafter (c = 0.3): each draft token costs a third of a target forward, so long drafts "
                       "lose more time than they gain"),
        (0.9, 0.0, 16, "a free drafter (c = 0): a longer draft never costs anything, up to max_gamma itself"),
        (0.8, 0.05, 16, "a good, cheap drafter: the speedup grows with γ for a while, then falls"),
        (0.5, 0.2, 16, "a tie: two draft lengths give exactly the same speedup, and the docstring asks for the "
                       "smaller γ"),
        (0.0, 0.0, 16, "a free drafter that is never right: every γ gives the same speedup (a tie), and the docstring "
                       "asks for the smaller γ"),
        (0.3, 0.6, 16, "a drafter barely worth running: even the shortest draft costs much"),
        (0.95, 0.02, 8, "a smaller search range: γ runs from 1 to max_gamma, both included"),
    ]
    return [Case((alpha, c, max_gamma), best_gamma(alpha, c, max_gamma), why) for alpha, c, max_gamma, why in cases]


# -- 05 self drafting: prompt lookup in a few lines ----------------------------------------------------------

def prompt_lookup_cases() -> list[Case]:
    from ...drafters.prompt_lookup import PromptLookupDrafter

    library = PromptLookupDrafter(max_ngram=2, min_ngram=2)
    cases = [  # (ids, γ, what is special)
        ([5, 6, 1, 2, 3, 9, 9, 1, 2, 8, 4, 7, 1, 2], 4, "the last two tokens occurred twice before: the most recent "
                                                         "occurrence is copied"),
        ([4, 1, 2, 3, 1, 2], 5, "the match is so recent that the copy runs off the end: past it, the copy repeats"),
        ([1, 2, 3, 4, 5], 3, "the last two tokens never occurred before: there is nothing to copy"),
        ([7, 7, 7], 4, "a run of one token: the 2-gram matches one token back"),
        ([3, 8, 6, 1, 2, 5, 5, 5, 5, 5, 1, 2], 2, "an old match with a long continuation: γ tokens at most"),
    ]
    return [Case((ids, gamma), library.propose(torch.tensor(ids), gamma, None, None).tokens.tolist(), why)
            for ids, gamma, why in cases]


# -- 06 verification strategies: Medusa's typical-acceptance bar ---------------------------------------------

def typical_bar_cases() -> list[Case]:
    from ...verifiers import TypicalAcceptance

    cases = [  # (p, ε, δ, what is special)
        ([0.97, 0.01, 0.01, 0.005, 0.005], 0.09, 0.3, "a confident target (low entropy): the δ·exp(−H) term is the "
                                                      "larger one"),
        ([0.2, 0.2, 0.2, 0.2, 0.2], 0.09, 0.3, "a flat target (high entropy, ln 5 nats): the bar is low"),
        ([0.5, 0.3, 0.1, 0.1, 0.0], 0.3, 0.5, "a token with probability 0 (0·log 0 = 0), and other ε and δ"),
        ([0.4, 0.3, 0.2, 0.05, 0.05], 0.2, 0.25, "a middling target: entropy in nats, not bits"),
    ]
    return [Case((_row(p), epsilon, delta), float(TypicalAcceptance(epsilon, delta).threshold(_row(p))), why)
            for p, epsilon, delta, why in cases]


# -- 07 latency playground: the speedup formula --------------------------------------------------------------

def speedup_formula_cases() -> list[Case]:
    from ...core.theory import speedup

    cases = [  # (α, γ, c, what is special)
        (0.0, 3, 0.2, "a drafter that is never right (α = 0): each step still emits one token, the target's own, "
                      "and costs every draft forward plus the target's forward"),
        (0.5, 1, 0.0, "one free draft token: a step emits the accepted draft, if any, and always one token of the "
                      "target's"),
        (1.0, 5, 0.05, "a drafter that is always right (α = 1): the geometric sum's closed form divides by 1 − α = 0"),
        (0.7, 4, 0.1, "0 < α < 1, several draft tokens and a drafter that costs something: every term counts"),
        (0.9, 8, 0.3, "a long draft from a costly drafter: γ drafter forwards per step"),
    ]
    return [Case((alpha, gamma, c), speedup(alpha, gamma, c), why) for alpha, gamma, c, why in cases]


# -- 08 benchmark: a roofline prediction by hand -------------------------------------------------------------

def roofline_speedup_cases() -> list[Case]:
    from ...bench.costmodel import HARDWARE, ModelShape, predicted_speedup

    target = ModelShape.dense(6.7e9, layers=32, width=4096)
    target_gqa = ModelShape.dense(6.7e9, layers=32, width=4096, kv_width=1024)  # grouped-query attention
    drafter = ModelShape.dense(6.8e7, layers=2, width=768)
    big = ModelShape.dense(7.0e10, layers=80, width=8192, kv_width=1024)
    # Each case is one where a usual mistake is off by several percent and the others by under 0.1% (the tolerance),
    # so the first case a mistake fails names what it forgot.
    cases = [  # (α, γ, target, drafter, hardware, context, what is special)
        (0.8, 4, target, drafter, HARDWARE["H100-SXM"], 0,
         "a 68M drafter on an H100: the draft is sequential, each of its γ tokens one drafter forward of its own"),
        (0.8, 16, target, drafter, HARDWARE["laptop CPU"], 0,
         "a 16-token draft on a laptop CPU: γ + 1 tokens pass the CPU's ridge point, so one forward over all of "
         "them costs clearly more than a forward over one token"),
        (0.8, 4, target_gqa, drafter, HARDWARE["A100-80GB"], 65536,
         "a long context: reading the KV cache adds to every forward, the drafter's and the target's, so c and v "
         "depend on the context"),
        (0.8, 5, big, drafter, HARDWARE["A100-80GB"], 4096,
         "a 70B target with grouped-query attention on an A100, context 4096"),
    ]
    return [Case((alpha, gamma, t, d, hw, context), predicted_speedup(alpha, gamma, t, d, hw, context), why)
            for alpha, gamma, t, d, hw, context, why in cases]


EXERCISES = {e.name: e for e in [
    Exercise("acceptance", "00_start_here", ("accept_probability",), number(), acceptance_cases,
             "x is kept with probability min(1, p(x)/q(x)) on all 6 cases"),
    Exercise("weight-read", "01_why_decoding_is_slow", ("weight_read_ms",), number(rel=1e-3), weight_read_cases,
             "reading the weights once takes P·b / bandwidth on all 4 cases"),
    Exercise("greedy-prefix", "02_draft_then_verify", ("accepted_count",), WHOLE, greedy_prefix_cases,
             "the accepted prefix ends at the first draft that is not the target's argmax, on all 5 cases"),
    Exercise("kernels", "03_speculative_sampling_math", ("accept_probability", "residual"), ROW, kernels_cases,
             "min(1, p/q) and norm(max(0, p − q)) are right on all 5 pairs, q(x) = 0 and p = q included"),
    Exercise("bug-hunt", "03_speculative_sampling_math", ("changes_the_law",), TRUTH, bug_hunt_cases,
             "the exact law finds every bug that changes the output, and clears the others, in 3 labs"),
    Exercise("best-gamma", "04_independent_drafters", ("best_draft_length",), WHOLE, best_gamma_cases,
             "the best γ maximises E[τ] / (γc + 1), the smaller on a tie, on all 7 cases"),
    Exercise("prompt-lookup", "05_self_drafting", ("lookup_draft",), IDS, prompt_lookup_cases,
             "most recent 2-gram match, copied periodically, nothing without a match: all 5 cases"),
    Exercise("typical-bar", "06_verification_strategies", ("typical_threshold",), number(), typical_bar_cases,
             "the bar min(ε, δ·exp(−H(p))) in nats, on all 4 cases"),
    Exercise("speedup-formula", "07_latency_playground", ("predicted_speedup",), number(), speedup_formula_cases,
             "E[τ] / (γc + 1) with E[τ] = (1 − α^(γ+1)) / (1 − α), α = 1 included, on all 5 cases"),
    Exercise("roofline-speedup", "08_benchmark", ("speedup_on",), number(rel=1e-3), roofline_speedup_cases,
             "c and v from forward_time, then E[τ] / (γc + v), on all 4 cases"),
]}
