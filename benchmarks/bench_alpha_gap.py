"""Where EAGLE's acceptance is lost on Spec-Bench: the data, or the way it drafts?

    python benchmarks/bench_alpha_gap.py [--per-task 2] [--out benchmarks/measured/alpha_gap_smollm2.json]

EAGLE's card gives a held-out α₁ measured teacher-forced on SmolLM2's own answers to held-out ShareGPT questions;
Spec-Bench runs accept less. On the same Spec-Bench questions this measures, by draft position (conditional):

  real          α of ``generate_speculative`` with the shipped head (greedy, γ 4, 128 tokens), in bf16 and fp32;
  teacher       α counted the training script's way (``train.evaluate``: the target's features, the head's greedy
                draft at every answer position) on the target's own bf16 answers to these questions.

If ``teacher`` matches ``real``, drafting loses nothing beyond what the head learned, and the gap to the card is the
questions' domain (translation, summaries, math, RAG against ShareGPT chat): the fix is training data, not code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_spec_bench import QUESTIONS, spec_bench_questions  # noqa: E402
from specdec_lab.bench.metrics import per_position, trace_record  # noqa: E402
from specdec_lab.decode import generate_speculative  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.models.smol import train  # noqa: E402
from specdec_lab.models.smollm2 import chat_ids  # noqa: E402
from specdec_lab.models.trained import SMOL_WEIGHTS, card, ranked_vocab  # noqa: E402
from specdec_lab.registry import build_drafter  # noqa: E402
from smol_bench import NEW_TOKENS, measure_and_store, own_answer  # noqa: E402

GAMMA = 4


def measure(per_task: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    questions = spec_bench_questions(QUESTIONS, per_task)
    result = {"questions": len(questions), "gamma": GAMMA, "new_tokens": NEW_TOKENS, "threads": threads,
              "card_heldout_alpha_by_position": card(SMOL_WEIGHTS / "eagle")["heldout_alpha_by_position"]}
    for dtype in (torch.bfloat16, torch.float32):
        name = str(dtype).replace("torch.", "")
        target, tokenizer = load_model("smollm2", None, dtype)
        eagle = build_drafter("eagle", target, tokenizer)
        runs, rows = [], []
        for q in questions:
            ids = chat_ids(tokenizer, q.prompt)
            rows.append(own_answer(target, ids))
            runs.append(generate_speculative(target, eagle, ids, gamma=GAMMA, max_new_tokens=NEW_TOKENS,
                                             min_new_tokens=NEW_TOKENS))
        result[f"real_{name}"] = [round(a, 4) if a is not None else None
                                  for a in per_position([trace_record(run, GAMMA) for run in runs], GAMMA)]
        if dtype == torch.bfloat16:  # the training script's count, on the answers the target itself gave
            vocab = ranked_vocab()[: train.VOCAB_KEPT]
            recipe = train.EagleRecipe(target, vocab)
            recipe.load_weights(SMOL_WEIGHTS / "eagle")
            result["teacher_bfloat16"] = train.evaluate(target, [recipe], rows, vocab, 4096)["alpha"]["eagle"]
        print(json.dumps(result), flush=True)
    return result


def main(argv=None) -> dict:
    return measure_and_store(__doc__, HERE / "measured" / "alpha_gap_smollm2.json", measure, argv)


if __name__ == "__main__":
    main()
