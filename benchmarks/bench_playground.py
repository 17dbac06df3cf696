"""How long one playground update takes on SmolLM2: to its first coloured tokens and to the end; memory over updates.

    python benchmarks/bench_playground.py [--model smollm2] [--updates 30] [--new-tokens 32] [--threads 1] [--out FILE]

Builds the latency playground (synchronous mode: exactly the code the widget runs on a slider release) on SmolLM2's
chat prompt, warms every method and its baseline once, then cycles γ, the drafter and the verifier through
``--updates`` changes. Each update is timed from the widget change to

* its first coloured tokens: the first verified step drawn into the view (the playground streams its steps), and
* its end: the whole run, its metrics, the chart, with the baseline cached (γ, drafter and verifier share it).

Figures, not assertions; the goals (issue 35: first tokens within 0.3 s, the update within 1.5 s median and 3 s max,
on 2 idle cores) are checked and written beside them. The 1-minute load average before and after is stored: a busy
machine makes every number larger. ``--model zoo:target`` runs the bundled toy instead. By default the result goes to
benchmarks/measured/playground_<model>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402

from specdec_lab.lab.viz.playground import DEFAULT_DRAFTER, DEFAULT_NEW_TOKENS, Playground  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402

PROMPT = ("Here is a text: 'The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
          "It is named after the engineer Gustave Eiffel, whose company designed and built the tower.' "
          "Who is the tower named after, and what did his company do?")  # a chat message whose answer quotes the text
TOY_PROMPT = "ROMEO.\nBut soft, what light through yonder window breaks?\n"
# One cycle of (widget, value): every change is a real change, and the cycle ends where it starts (the defaults).
CHANGES = [("gamma", 2), ("gamma", 6), ("drafter", "lookup+retrieval"), ("gamma", 4), ("verifier", "greedy"),
           ("drafter", "eagle"), ("verifier", "speculative"), ("drafter", "distilled"), ("drafter", "medusa"),
           ("verifier", "tree-greedy"), ("verifier", "speculative"), ("drafter", "early-exit"), ("verifier", "typical"),
           ("drafter", DEFAULT_DRAFTER), ("verifier", "speculative")]
GOALS = {"first_tokens_s": 0.3, "total_median_s": 1.5, "total_max_s": 3.0}
OUT = Path(__file__).resolve().parent / "measured"


def rss_mib() -> float:
    """Current resident set size of this process (Linux), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def summary(values: list[float]) -> dict:
    return {"n": len(values), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def measure(model: str, updates: int, new_tokens: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    target, tokenizer = load_model(model, "cpu", dtype=torch.float32)
    pg = Playground(target, tokenizer, prompt=TOY_PROMPT if model.startswith("zoo:") else PROMPT,
                    max_new_tokens=new_tokens, background=False)
    for attr, value in CHANGES:  # warm-up: every method built once (retrieval indexes its datastore), the baseline
        getattr(pg, attr).value = value
    rss_start, rows = rss_mib(), []
    for attr, value in itertools.islice(itertools.cycle(CHANGES), updates):
        getattr(pg, attr).value = value
        if pg.error:
            raise SystemExit(f"update {attr}={value!r} failed: {pg.error}")
        first, total = pg.latency
        run = pg.runs[-1]
        rows.append({"change": f"{attr}={value}", "drafter": run.settings.drafter, "verifier": run.settings.verifier,
                     "gamma": run.settings.gamma, "first_tokens_s": round(first, 3), "total_s": round(total, 3),
                     "alpha": round(run.alpha, 3), "tau": round(run.tau, 2), "ms_per_token": round(run.ms_per_token, 1),
                     "speedup": round(run.measured_speedup, 3)})
    t0 = time.perf_counter()  # a temperature change measures a new baseline too: reported apart
    pg.temperature.value = 0.7
    cold = time.perf_counter() - t0
    firsts, totals = [r["first_tokens_s"] for r in rows], [r["total_s"] for r in rows]
    default = [r["total_s"] for r in rows if r["drafter"] == DEFAULT_DRAFTER and r["verifier"] == "speculative"]
    by_drafter = {}
    for name in dict.fromkeys(r["drafter"] for r in rows):
        mine = [r for r in rows if r["drafter"] == name and r["verifier"] == "speculative"]
        if mine:
            by_drafter[name] = {"updates": len(mine), "total_median_s": round(statistics.median(r["total_s"] for r in mine), 3),
                                "speedup_median": round(statistics.median(r["speedup"] for r in mine), 3)}
    result = {
        "model": model, "prompt": pg.prompt.value, "new_tokens": new_tokens, "threads": threads,
        "torch": torch.__version__, "default_drafter": DEFAULT_DRAFTER,
        "first_tokens_s": summary(firsts), "total_s": summary(totals), "total_at_default_drafter_s": summary(default),
        "baseline_ms_per_token": round(pg.runs[0].baseline_ms_per_token, 1),
        "update_with_a_new_baseline_s": round(cold, 3), "by_drafter_speculative": by_drafter,
        "goals": GOALS, "meets_goals": {"first_tokens_s": max(firsts) <= GOALS["first_tokens_s"],
                                        "total_median_s": statistics.median(totals) <= GOALS["total_median_s"],
                                        "total_max_s": max(totals) <= GOALS["total_max_s"]},
        "memory_mib": {"after_warm_up": round(rss_start), "after_updates": round(rss_mib())},
        "updates": rows,
    }
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--new-tokens", type=int, default=DEFAULT_NEW_TOKENS)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: what the workbook picks on 2 cores)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    head = provenance("bench_playground.py", argv)
    result = head | measure(args.model, args.updates, args.new_tokens, args.threads)
    result["load_after"] = os.getloadavg()[0]
    result["busy"] = max(result["load_before"], result["load_after"]) >= 0.5
    if result["busy"]:
        result["note"] = ("measured on a busy machine (see the load averages): every time is larger than on 2 idle "
                          f"cores; re-run idle with: {result['command']}")
    out = args.out or OUT / f"playground_{args.model.replace(':', '_')}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    s, f = result["total_s"], result["first_tokens_s"]
    print(f"# playground update on {args.model}, {args.new_tokens} new tokens, {args.threads} thread(s), "
          f"load {result['load_before']:.1f} -> {result['load_after']:.1f}")
    print(f"first tokens: median {f['median']:.2f} s, max {f['max']:.2f} s; whole update: median {s['median']:.2f} s, "
          f"max {s['max']:.2f} s over {s['n']} updates; with a new baseline {result['update_with_a_new_baseline_s']:.2f} s")
    print(f"goals {result['meets_goals']}; stored in {out}")


if __name__ == "__main__":
    main()
