"""Train the lab model zoo from the corpus: one command, fixed seeds, a progress bar.

    python -m specdec_lab.models.zoo.train --out specdec_lab/models/zoo/models [--scale 1.0] [--device cpu]

Stages (each writes a transformers checkpoint folder or a heads folder):
  1. corpus + tokenizer (byte-level BPE, 4096 tokens), see corpus.py / tokenizer.py
  2. target: Llama-style, trained with next-token cross-entropy plus a LayerSkip-style
     early-exit loss (Elhoushi et al., 2024): the same norm and head read after layer
     ``exit_layer`` too, so the target's first layers alone make a usable drafter
  3. drafter-small: a 1-layer Llama trained on the corpus alone
  4. drafter-distilled: the same shape, started from drafter-small's weights and trained to
     match the target's own next-token distributions, KL(p_target || q), on a mix of corpus
     windows and the target's own continuations, half greedy and half sampled at T = 1
     (on-policy data: DistillSpec, Zhou et al. 2024, finds it raises acceptance most)
  5. medusa: K heads on the frozen target's last hidden state (heads.py)
  6. eagle: an EAGLE feature head (Li et al., 2024; eagle.py) on the frozen target: fc(2d -> d) and
     one Llama layer map (f_t, e(x_{t+1})) to f̂_{t+1}, trained teacher-forced on the target's own
     features with SmoothL1(f̂, f) + 0.1 · CE(p_target, W_out f̂), inputs noised by U(−0.1, 0.1)
``--scale`` multiplies every stage's step count (0.02 makes a smoke run in a minute).
The shipped weights are what this command wrote with the defaults; their model cards
record the command, seed, steps and losses.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from ...core.progress import finish
from .corpus import build_corpus, cache_dir
from .eagle import EagleConfig, EagleHead, eagle_loss
from ...drafters.medusa_heads import MedusaHeads
from ..schedule import cosine_lr
from .tokenizer import corpus_files, load_tokenizer, save_tokenizer, train_tokenizer

SEED = 0
CONTEXT = 512  # max_position_embeddings of every zoo model
MIX = {"shakespeare": 0.75, "python": 0.25}  # share of training windows drawn from each domain


@dataclass(frozen=True)
class Shape:
    layers: int  # decoder layers
    hidden: int  # model width d
    heads: int  # attention heads (head size d / heads)
    intermediate: int  # MLP width


@dataclass(frozen=True)
class Stage:
    steps: int  # optimizer steps at --scale 1
    batch: int  # sequences per step
    seq_len: int  # tokens per sequence
    lr: float  # peak learning rate (linear warm-up, cosine decay to 10%)


TARGET = Shape(layers=6, hidden=384, heads=6, intermediate=1024)
DRAFTER = Shape(layers=1, hidden=128, heads=2, intermediate=384)
EXIT_LAYER = 2  # the target's early exit: after this many layers
EXIT_WEIGHT = 0.3  # weight of the early-exit loss while training the target
MEDUSA_HEADS = 3
ON_POLICY = dict(sequences=768, prompt_len=33, batch=64, share=0.5)  # target continuations for distillation
STAGES = {
    "target": Stage(steps=550, batch=16, seq_len=256, lr=2e-3),
    "drafter-small": Stage(steps=900, batch=16, seq_len=256, lr=3e-3),
    "drafter-distilled": Stage(steps=450, batch=16, seq_len=256, lr=1.5e-3),
    "medusa": Stage(steps=150, batch=16, seq_len=256, lr=2e-3),
    "eagle": Stage(steps=320, batch=8, seq_len=256, lr=3e-3),
}
EAGLE = dict(weight=0.1, noise=0.2)  # CE weight and input-noise width of the EAGLE loss (the paper's values)


def stage_generator(stage: str) -> torch.Generator:
    """Each stage draws its data from its own seeded stream, so ``--stages X`` alone reproduces stage X."""
    return torch.Generator().manual_seed(SEED + list(STAGES).index(stage))


def llama(shape: Shape, vocab_size: int, eos_id: int) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=vocab_size, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers, num_attention_heads=shape.heads, num_key_value_heads=shape.heads,
        max_position_embeddings=CONTEXT, tie_word_embeddings=True, initializer_range=0.02,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
    )
    return LlamaForCausalLM(cfg)


def encode_corpus(corpus: Path, tokenizer, split: str) -> dict[str, torch.Tensor]:
    """Each domain's split as one long (N,) int64 tensor of token ids."""
    return {
        domain: torch.tensor(tokenizer((corpus / domain / f"{split}.txt").read_text(encoding="utf-8"))["input_ids"])
        for domain in MIX
    }


def windows(data: dict[str, torch.Tensor], batch: int, seq_len: int, g: torch.Generator) -> torch.Tensor:
    """(batch, seq_len + 1) random windows, domains drawn with the MIX weights."""
    names = list(MIX)
    picks = torch.multinomial(torch.tensor([MIX[n] for n in names]), batch, replacement=True, generator=g)
    rows = []
    for i in picks.tolist():
        tokens = data[names[i]]
        start = int(torch.randint(0, tokens.shape[0] - seq_len - 1, (1,), generator=g))
        rows.append(tokens[start : start + seq_len + 1])
    return torch.stack(rows)


def lr_at(step: int, stage: Stage, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then ``cosine_lr`` from stage.lr down to 10% of it."""
    warmup = max(steps // 20, 1)
    if step < warmup:
        return stage.lr * (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return cosine_lr(stage.lr, progress)


def on_policy_mix(data: dict[str, torch.Tensor], continuations: torch.Tensor, share: float):
    """A window sampler: each row is one of the target's continuations with probability ``share``, else corpus."""

    def draw(batch: int, seq_len: int, g: torch.Generator) -> torch.Tensor:
        rows = windows(data, batch, seq_len, g)
        own = torch.rand(batch, generator=g) < share
        picks = torch.randint(0, continuations.shape[0], (batch,), generator=g)
        rows[own] = continuations[picks[own], : seq_len + 1]
        return rows

    return draw


@torch.no_grad()
def target_continuations(target, data: dict[str, torch.Tensor], n: int, prompt_len: int, new_tokens: int,
                         batch: int, g: torch.Generator, device) -> torch.Tensor:
    """(n, prompt_len + new_tokens) sequences: corpus prompts continued by the target itself.

    Even batches decode greedily, odd ones sample at temperature 1, so the drafter learns
    the target where both kinds of decoding take it. EOS is suppressed (min_new_tokens).
    """
    rows = []
    for i in tqdm(range(0, n, batch), desc="target continuations", unit="batch"):
        prompts = windows(data, min(batch, n - i), prompt_len - 1, g).to(device)
        sampled = (i // batch) % 2 == 1
        out = target.generate(
            prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            do_sample=sampled, temperature=1.0 if sampled else None, top_k=0 if sampled else None, top_p=None,
            pad_token_id=target.config.eos_token_id,
        )
        rows.append(out.cpu())
    return torch.cat(rows)


def optimise(name: str, params, loss_fn, data, stage: Stage, scale: float, g: torch.Generator, device,
             draw=None) -> list[float]:
    """The shared training loop: AdamW, warm-up + cosine, gradient clipping; returns the loss curve.

    ``draw(batch, seq_len, g)`` supplies the (batch, seq_len + 1) windows; corpus windows by default.
    """
    draw = draw or (lambda batch, seq_len, g: windows(data, batch, seq_len, g))
    steps = max(int(stage.steps * scale), 1)
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=stage.lr, betas=(0.9, 0.95), weight_decay=0.1)
    losses = []
    bar = tqdm(range(steps), desc=name, unit="step")
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, stage, steps)
        batch = draw(stage.batch, stage.seq_len, g).to(device)  # (B, T+1)
        loss = loss_fn(batch[:, :-1], batch[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    finish(bar)  # in a notebook, also the final state as text (a saved notebook has no widget state)
    return losses


def target_loss(model: LlamaForCausalLM):
    """Cross-entropy at the last layer + EXIT_WEIGHT × cross-entropy read after EXIT_LAYER layers."""

    def loss(x, y):
        out = model(input_ids=x, output_hidden_states=True)
        final = F.cross_entropy(out.logits.flatten(0, 1), y.flatten())
        exit_logits = model.lm_head(model.model.norm(out.hidden_states[EXIT_LAYER]))
        early = F.cross_entropy(exit_logits.flatten(0, 1), y.flatten())
        return final + EXIT_WEIGHT * early

    return loss


def lm_loss(model):
    return lambda x, y: F.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten())


def distill_loss(student, teacher):
    """KL(p_teacher || q_student) per token, at temperature 1."""

    def loss(x, y):
        with torch.no_grad():
            p_log = teacher(input_ids=x).logits.log_softmax(-1)
        q_log = student(input_ids=x).logits.log_softmax(-1)
        return F.kl_div(q_log.flatten(0, 1), p_log.flatten(0, 1), log_target=True, reduction="batchmean")

    return loss


def distill_live(student, teacher, prompt_ids: list[list[int]], steps: int = 80, batch: int = 8, prompt_len: int = 16,
                 new_tokens: int = 48, sequences: int = 128, lr: float = 2e-3, seed: int = 0) -> list[float]:
    """DistillSpec's on-policy recipe in miniature, for a live demo: trains ``student`` in place, returns the loss curve.

    The teacher continues the first ``prompt_len`` tokens of each prompt, once greedily and
    then sampling at T = 1 (``sequences`` rows in all); the student then minimises KL(p_teacher ‖ q_student) on
    random rows of that text for ``steps`` AdamW steps. No corpus is needed: the prompts
    are the only data, so it runs offline on the bundled models.
    """
    starts = [ids[:prompt_len] for ids in prompt_ids if len(ids) >= prompt_len]
    if not starts:
        raise ValueError(f"no prompt has {prompt_len} tokens; give longer prompts or a smaller prompt_len")
    device = teacher.device
    unique = torch.tensor(starts).to(device)
    sampled = unique.repeat(math.ceil(max(sequences - len(starts), 1) / len(starts)), 1)[: max(sequences - len(starts), 1)]
    torch.manual_seed(seed)  # generate samples from the global generator
    rows = []
    with torch.no_grad():
        for prompts, do_sample in ((unique, False), (sampled, True)):  # the greedy path of each prompt, then samples
            rows.append(teacher.generate(
                prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                do_sample=do_sample, temperature=1.0 if do_sample else None, top_k=0 if do_sample else None, top_p=None,
                pad_token_id=teacher.config.eos_token_id,
            ))
    text = torch.cat(rows)  # (sequences, prompt_len + new_tokens)

    def draw(b: int, seq_len: int, g: torch.Generator) -> torch.Tensor:
        return text[torch.randint(0, text.shape[0], (b,), generator=g), : seq_len + 1]

    stage = Stage(steps=steps, batch=batch, seq_len=text.shape[1] - 1, lr=lr)
    student.train()
    losses = optimise("distilling", student.parameters(), distill_loss(student, teacher), None, stage, 1.0,
                      torch.Generator().manual_seed(seed), device, draw)
    student.eval()
    return losses


def medusa_loss(heads: MedusaHeads, target: LlamaForCausalLM):
    """Head k (1..K) at position t predicts token t + k + 1 from the target's final hidden state."""

    def loss(x, y):
        with torch.no_grad():
            h = target.model(input_ids=x).last_hidden_state  # (B, T, d), after the final norm
        feats = heads(h)  # (K, B, T, d)
        total = 0.0
        for k in range(feats.shape[0]):
            shift = k + 1  # y[:, t] is token t+1; head k wants token t+1+shift
            logits = target.lm_head(feats[k][:, :-shift])  # (B, T-shift, V)
            total = total + F.cross_entropy(logits.flatten(0, 1), y[:, shift:].flatten())
        return total / feats.shape[0]

    return loss


@torch.no_grad()
def heldout_loss(logits_fn, data: dict[str, torch.Tensor], seq_len: int = 256, n: int = 24) -> dict[str, float]:
    """Mean next-token cross-entropy (nats) on n fixed held-out windows per domain."""
    g = torch.Generator().manual_seed(1234)
    result = {}
    for domain, tokens in data.items():
        starts = torch.randint(0, tokens.shape[0] - seq_len - 1, (n,), generator=g).tolist()
        batch = torch.stack([tokens[s : s + seq_len + 1] for s in starts])
        logits = logits_fn(batch[:, :-1])
        result[domain] = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten()).item()
    return result


def write_heldout_prompts(corpus: Path, out: Path, per_domain: dict[str, int] = {"shakespeare": 16, "python": 8}) -> None:
    """Cut prompts (a few whole lines, ~150 characters) from the held-out split, with a fixed seed.

    Python prompts start at a ``def`` or ``class`` line, like a code-completion request.
    """
    g = torch.Generator().manual_seed(SEED)
    prompts = []
    for domain, n in per_domain.items():
        lines = (corpus / domain / "heldout.txt").read_text(encoding="utf-8").split("\n")
        while sum(p["domain"] == domain for p in prompts) < n:
            i = int(torch.randint(0, len(lines) - 20, (1,), generator=g))
            if domain == "python" and not lines[i].lstrip().startswith(("def ", "class ")):
                continue  # code prompts start at a definition, as a completion request would
            text = ""
            while len(text) < 150 and i < len(lines):
                text += lines[i] + "\n"
                i += 1
            if text.strip() and "<|endoftext|>" not in text:
                prompts.append({"domain": domain, "text": text})
    (out / "heldout_prompts.json").write_text(
        json.dumps({"seed": SEED, "prompts": [p["text"] for p in prompts], "domains": [p["domain"] for p in prompts]}, indent=1) + "\n"
    )


def save_model(model: LlamaForCausalLM, tokenizer_dir: Path, folder: Path, card: dict) -> None:
    model.half().save_pretrained(folder, max_shard_size="16MB")  # shards under 20 MiB each, for the repository
    model.float()
    for f in tokenizer_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "training.json").write_text(json.dumps(card, indent=1) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for the model folders")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every stage's steps (0.02: smoke run)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of: " + ",".join(STAGES))
    args = ap.parse_args(argv)
    torch.manual_seed(SEED)
    device = torch.device(args.device)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m specdec_lab.models.zoo.train " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    common = {"command": command, "seed": SEED, "scale": args.scale, "torch": torch.__version__,
              "machine": f"{platform.machine()} {args.device}"}

    corpus = cache_dir() / "corpus"
    manifest = build_corpus(corpus)
    tok_dir = out / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        texts = [p.read_text(encoding="utf-8") for p in corpus_files(corpus)]
        save_tokenizer(train_tokenizer(texts), tok_dir, model_max_length=CONTEXT)
    tokenizer = load_tokenizer(tok_dir)
    eos = tokenizer.eos_token_id
    train_data, heldout_data = encode_corpus(corpus, tokenizer, "train"), encode_corpus(corpus, tokenizer, "heldout")
    common["corpus_sha256"] = {d: manifest["domains"][d]["train"]["sha256"] for d in MIX}
    stages = args.stages.split(",")
    write_heldout_prompts(corpus, out)

    def run(name, model_params, loss, stage_key, draw=None, g=None):
        start = time.time()
        g = g or stage_generator(stage_key)
        losses = optimise(name, model_params, loss, train_data, STAGES[stage_key], args.scale, g, device, draw)
        return {"stage": asdict(STAGES[stage_key]), "steps": len(losses), "minutes": round((time.time() - start) / 60, 1),
                "train_loss_first": round(losses[0], 3), "train_loss_last20": round(sum(losses[-20:]) / len(losses[-20:]), 3)}

    def save_drafter(drafter, name, info):
        drafter.eval()
        info["heldout_loss"] = heldout_loss(lambda x: drafter(input_ids=x.to(device)).logits.cpu(), heldout_data)
        save_model(drafter, tok_dir, out / name, common | {"shape": asdict(DRAFTER)} | info)

    target_dir = out / "target"
    if "target" in stages:
        target = llama(TARGET, len(tokenizer), eos).to(device)
        info = run("target", target.parameters(), target_loss(target), "target")
        target.eval()
        info["heldout_loss"] = heldout_loss(lambda x: target(input_ids=x.to(device)).logits.cpu(), heldout_data)
        info["heldout_loss_early_exit"] = heldout_loss(
            lambda x: target.lm_head(target.model.norm(target(input_ids=x.to(device), output_hidden_states=True).hidden_states[EXIT_LAYER])).cpu(),
            heldout_data,
        )
        save_model(target, tok_dir, target_dir, common | {"shape": asdict(TARGET), "exit_layer": EXIT_LAYER, "exit_weight": EXIT_WEIGHT} | info)
    target = LlamaForCausalLM.from_pretrained(target_dir, dtype=torch.float32).to(device).eval()
    target.requires_grad_(False)

    if "drafter-small" in stages:
        torch.manual_seed(SEED + 1)
        drafter = llama(DRAFTER, len(tokenizer), eos).to(device)
        info = run("drafter-small", drafter.parameters(), lm_loss(drafter), "drafter-small")
        save_drafter(drafter, "drafter-small", info)

    if "drafter-distilled" in stages:
        # DistillSpec: start from the pretrained drafter, distil on the target's own text too
        drafter = LlamaForCausalLM.from_pretrained(out / "drafter-small", dtype=torch.float32).to(device)
        start = time.time()
        spec = ON_POLICY
        n_seq = max(int(spec["sequences"] * args.scale), 2)
        seq_len = STAGES["drafter-distilled"].seq_len
        g = stage_generator("drafter-distilled")
        torch.manual_seed(SEED + 3)  # the sampled continuations draw from the global generator
        continuations = target_continuations(target, train_data, n_seq, spec["prompt_len"], seq_len + 1 - spec["prompt_len"], spec["batch"], g, device)
        draw = on_policy_mix(train_data, continuations, spec["share"])
        info = run("drafter-distilled", drafter.parameters(), distill_loss(drafter, target), "drafter-distilled", draw, g)
        info["on_policy"] = spec | {"sequences": n_seq, "minutes_total": round((time.time() - start) / 60, 1), "init": "drafter-small"}
        save_drafter(drafter, "drafter-distilled", info)

    if "medusa" in stages:
        torch.manual_seed(SEED + 2)
        heads = MedusaHeads(TARGET.hidden, MEDUSA_HEADS).to(device)
        info = run("medusa", heads.parameters(), medusa_loss(heads, target), "medusa")
        heads.save(out / "medusa", common | {"target": "target"} | info)

    if "eagle" in stages:
        torch.manual_seed(SEED + 4)
        head = EagleHead(EagleConfig.like(target)).to(device)
        noise_g = torch.Generator(device=device).manual_seed(SEED + 4)
        loss = eagle_loss(head, target, EAGLE["weight"], EAGLE["noise"], noise_g)
        info = run("eagle", head.parameters(), loss, "eagle")
        last = loss.parts[-20:]
        info["regression_last20"] = round(sum(r for r, _ in last) / len(last), 4)  # SmoothL1(f̂, f)
        info["classification_last20"] = round(sum(c for _, c in last) / len(last), 3)  # CE(p_target, q), nats
        head.save(out / "eagle", common | {"target": "target"} | EAGLE | info)
    print(f"zoo written to {out}")


if __name__ == "__main__":
    main()
