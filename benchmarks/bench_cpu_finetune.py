"""Can this CPU lift EAGLE's acceptance where Spec-Bench loses it? A short fine-tune on task-like ShareGPT chats.

    python benchmarks/bench_cpu_finetune.py --per-task 4 [--minutes 45] [--out benchmarks/measured/cpu_finetune_smollm2.json]

EAGLE's α₁ on Spec-Bench is lowest where the answer copies or transforms a long prompt (translation, summaries,
RAG; catalogue section ``smollm2``), and ShareGPT, its training text, holds few such chats. This starts from the
shipped head and trains it ``--minutes`` on this CPU with the trainer's fastest settings (bench_train_speed.py:
bf16 target, the law on the 16,384 ids drafting reads, 3 unrolled steps), on a mix of

  task-like   every training chat whose opening (up to its first answer) is longer than ``LONG_OPENING`` tokens or
              asks to translate, summarise, paraphrase or rewrite (ShareGPT text; no regenerated answers: on 2 cores
              generating them would take the whole budget), and
  the rest    as many other training chats, drawn at random, so the head does not forget chat.

Before and after, α by draft position (conditional, teacher forced: ``train.evaluate``) on the target's own greedy
answers to ``--per-task`` Spec-Bench questions of each task type, and on the held-out ShareGPT text. The new head
is written only where ``--weights-out`` says; the shipped weights are never touched.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_spec_bench import QUESTIONS, spec_bench_questions  # noqa: E402
from bench_suite import cpu_flags  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.models.smol import train  # noqa: E402
from specdec_lab.models.smol.sharegpt import default_dir, load_split  # noqa: E402
from specdec_lab.models.smollm2 import chat_ids  # noqa: E402
from specdec_lab.models.trained import SMOL_WEIGHTS, ranked_vocab  # noqa: E402
from smol_bench import measure_and_store, own_answer  # noqa: E402

LONG_OPENING = 384  # tokens: longer than any opening the shipped run regenerated answers for
TASK_WORDS = re.compile(r"translat|summar|tl;?dr|paraphras|rewrite", re.I)
TASK_WINDOW = 400  # tokens: the end of the opening (the request) that TASK_WORDS are looked for in
DRAFT_VOCAB, TTT_STEPS, BATCH_TOKENS = 16384, 3, 3072
HELDOUT_TOKENS = 60_000


def task_like(rows: list, tokenizer) -> tuple[list, list]:
    """(task-like, other) training rows: a long opening, or task words in the opening's last TASK_WINDOW tokens."""
    task, other = [], []
    for row in rows:
        opening = train.opening(row[0], row[1], 10**9)
        is_task = opening is not None and (len(opening) > LONG_OPENING
                                           or TASK_WORDS.search(tokenizer.decode(opening[-TASK_WINDOW:])))
        (task if is_task else other).append(row)
    return task, other


def measure(per_task: int, threads: int, minutes: float, weights_out: Path | None) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(train.SEED)
    target, tokenizer = load_model("smollm2", "cpu", torch.bfloat16)
    target.requires_grad_(False)
    vocab = ranked_vocab(SMOL_WEIGHTS)[: train.VOCAB_KEPT]
    answers: dict[str, list] = {}
    for q in spec_bench_questions(QUESTIONS, per_task):
        answers.setdefault(q.task, []).append(own_answer(target, chat_ids(tokenizer, q.prompt)))
    answers["sharegpt held-out"] = train.first_tokens(load_split(default_dir(), "heldout"), HELDOUT_TOKENS)
    task, other = task_like(load_split(default_dir(), "train"), tokenizer)
    drawn = np.random.default_rng(train.SEED).choice(len(other), len(task), replace=False)
    mix = task + [other[i] for i in drawn]

    recipe = train.EagleRecipe(target, vocab[:DRAFT_VOCAB])
    recipe.ttt_steps = TTT_STEPS
    recipe.load_weights(SMOL_WEIGHTS / "eagle")

    def alpha() -> dict:
        return {name: train.evaluate(target, [recipe], rows, vocab, 4096)["alpha"]["eagle"]
                for name, rows in answers.items()}

    before = alpha()
    info = train.train(target, [recipe], mix, BATCH_TOKENS, minutes * 60, max_epochs=3.0)
    after = alpha()
    if weights_out is not None:
        recipe.model.eval()
        recipe.save_weights(weights_out)
    return {"questions_per_task": per_task, "threads": threads, "cpu_flags": cpu_flags(), "minutes": minutes,
            "settings": {"dtype": "bfloat16", "law_vocab": DRAFT_VOCAB, "ttt_steps": TTT_STEPS,
                         "batch_tokens": BATCH_TOKENS, "lr": recipe.lr},
            "task_like_chats": len(task), "task_like_tokens": int(sum(len(r[0]) for r in task)),
            "mix_chats": len(mix), "train": info, "alpha_before": before, "alpha_after": after,
            "alpha1_change": {name: round(after[name][0] - before[name][0], 4) for name in before}}


def main(argv=None) -> dict:
    return measure_and_store(__doc__, HERE / "measured" / "cpu_finetune_smollm2.json", measure, argv,
                             {"--minutes": {"type": float, "default": 45.0, "help": "training time on this CPU"},
                              "--weights-out": {"type": Path, "default": None, "help": "write the fine-tuned head here"}})


if __name__ == "__main__":
    main()
