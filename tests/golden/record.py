"""Record (or check) golden traces: every drafter × verifier the registry allows, at T = 0 and T = 1, on the zoo.

    python tests/golden/record.py            # write tests/golden/traces.json.gz (done once, before an engine change)

tests/test_golden_traces.py re-runs the same grid and requires every trace to be identical: tokens, drafts,
decisions and tree records exactly; accept probabilities, uniforms, p and q of the drafts to a relative 1e-4 (the
measured drift between CPU kernels, see that test). Each drafter is built once per prompt and temperature and reused
across the verifiers, so the grid also checks that reset() makes a used drafter act like a fresh one. Token
recycling's table belongs to the target and outlives a call by design; it is cleared before every run, so each trace
starts cold and no trace depends on the ones recorded before it.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "traces.json.gz"
PROMPTS = ("ROMEO.\nBut soft, what light", "def main(args):\n    ")
TEMPERATURES = (0.0, 1.0)
GAMMA, NEW_TOKENS, SEED = 3, 20, 11


def _floats(xs):
    return [None if (isinstance(x, float) and math.isnan(x)) else repr(float(x)) for x in xs]


def fingerprint(out) -> dict:
    """Everything a step recorded that the algorithm decides (no timings)."""
    steps = []
    for s in out.steps:
        steps.append({
            "context_len": s.context_len, "draft": s.draft, "decisions": s.decisions, "n_accepted": s.n_accepted,
            "emitted": s.emitted, "next_token": s.next_token, "next_kind": s.next_kind,
            "p": _floats(s.p_draft), "q": _floats(s.q_draft), "a": _floats(s.accept_prob), "u": _floats(s.uniforms),
            "top": [[t, repr(p), repr(q)] for t, p, q in s.top_at_stop],
            "tree": None if s.tree is None else {k: (_floats(v) if k == "accept_prob" else v) for k, v in s.tree.items()},
        })
    return {"tokens": out.token_ids, "steps": steps, "target_forwards": out.stats.target_forwards,
            "drafter_forwards": out.stats.drafter_forwards}


def pairs() -> list[tuple[str, str]]:
    from specdec_lab.registry import DRAFTERS, VERIFIERS

    return [(d, v) for d, de in DRAFTERS.items() for v, ve in VERIFIERS.items() if de.branches or not ve.tree]


def record_all() -> dict:
    from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
    from specdec_lab.models.loading import load_model
    from specdec_lab.drafters.recycling import matrix_for

    torch.set_num_threads(1)
    target, tokenizer = load_model("zoo:target", "cpu")
    result = {}
    for prompt_index, prompt in enumerate(PROMPTS):
        ids = tokenizer(prompt)["input_ids"]
        for t in TEMPERATURES:
            base = generate_autoregressive(target, ids, max_new_tokens=NEW_TOKENS, temperature=t, seed=SEED)
            result[f"{prompt_index}|T={t}|autoregressive"] = fingerprint(base)
            built = {}  # one drafter per name, reused across verifiers: reset() must make it act like a fresh one
            for d, v in pairs():
                drafter = built[d] if d in built else built.setdefault(d, build_drafter(d, target, tokenizer))
                matrix_for(target).clear()  # token recycling's table outlives a call by design: each trace starts cold
                out = generate_speculative(target, drafter, ids, gamma=GAMMA, max_new_tokens=NEW_TOKENS, temperature=t,
                                           seed=SEED, verifier=v)
                result[f"{prompt_index}|T={t}|{d}+{v}"] = fingerprint(out)
    return result


if __name__ == "__main__":
    traces = record_all()
    text = json.dumps(traces, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
    GOLDEN.write_bytes(gzip.compress(text.encode(), mtime=0))
    print(f"wrote {len(traces)} traces to {GOLDEN}", file=sys.stderr)
