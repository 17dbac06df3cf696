"""Every drafting and verification method of the workbook, by name: the survey's taxonomy in one table.

Xia et al. (2024), "Unlocking Efficiency in LLM Inference", sorts drafters into
*independent* drafting (a separate model or datastore proposes) and *self-drafting*
(the target itself, its extra heads, or its own context proposes), and verifiers
into lossless and relaxed (lossy) rules. Widgets, benchmarks and notebooks list
methods from here, so a new method shows up everywhere once it is registered.

    build_drafter("distilled", target)                  # -> a drafter object for generate_speculative
    build_drafter("prompt-lookup", target, max_ngram=4)
    build_verifier("typical", epsilon=0.05)
"""

from __future__ import annotations

import functools
import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .drafters.cascade import FirstNonEmpty
from .drafters.dynamic import HeuristicGamma
from .drafters.eagle import EagleDrafter
from .drafters.early_exit import early_exit_drafter
from .drafters.lookahead import LookaheadDrafter
from .drafters.medusa import MedusaDrafter
from .drafters.prompt_lookup import PromptLookupDrafter
from .drafters.recycling import RecyclingDrafter
from .drafters.retrieval import RetrievalDrafter
from .drafters.small_model import ModelDrafter
from .drafters.suffix import SuffixDrafter
from .drafters.suffix_automaton import StaticAutomaton
from .models.loading import ZOO_DIR, load_model
from .models.smol import build as smol_build
from .models.trained import CARD, DATASTORE, find_weights, retrieval_datastore, trained_for_smollm2
from .verifiers import (RULES, BlockVerification, GreedyMatch, SpeculativeSampling, TopKMatch, TreeGreedy,
                        TreeSpeculative, TypicalAcceptance, Verifier)

INDEPENDENT, SELF = "independent", "self-drafting"


@dataclass(frozen=True)
class DrafterEntry:
    name: str
    family: str  # INDEPENDENT or SELF
    needs_training: bool  # False: works on any target as is (lookup tables, the target's own layers)
    branches: bool  # can propose token trees (tree verifiers need it)
    summary: str
    build: Callable  # (target, tokenizer, **options) -> drafter


@dataclass(frozen=True)
class VerifierEntry:
    name: str
    lossless: bool  # True: output has exactly the target's distribution (greedy ones: its greedy output)
    tree: bool  # verifies a token tree in one forward
    summary: str
    build: Callable  # (**options) -> verifier


def _model_drafter(default: str, name: str):
    def build(target, tokenizer=None, model: str | None = None, **options):
        if model is None and name.startswith("distilled"):
            folder = find_weights("distilled", target)
            if folder is not None:  # SmolLM2's distilled drafter (smol/weights/distilled)
                drafter = smol_build.distilled(target, folder)
                if options:
                    drafter = ModelDrafter(drafter.model, None, tokenizer, name=name, **options)
                return drafter
        if model is None and trained_for_smollm2(target):
            raise ValueError(f"the {name!r} drafter needs a smaller model with SmolLM2's tokenizer, and none is available "
                             "offline (135M is its family's smallest); use 'distilled', which was trained for it, or pass "
                             "model=<folder of a causal LM with the same tokenizer>")
        model = default if model is None else model
        drafter_model, drafter_tokenizer = load_model(model, target.device, target.dtype) if isinstance(model, str) else (model, None)
        return ModelDrafter(drafter_model, drafter_tokenizer, tokenizer, name=name, **options)

    return build


def _zoo_exit_layer() -> int:
    card = ZOO_DIR / "target" / "training.json"
    return json.loads(card.read_text())["exit_layer"] if card.exists() else 2


def _early_exit(target, tokenizer=None, exit_layer: int | None = None):
    """With no exit_layer: the trained exit for this target (SmolLM2: layer 4 + an adapter; the zoo: layer 2);
    an explicit exit_layer: the target's first layers as they are, untrained, on any Llama-style target."""
    if exit_layer is None:
        folder = find_weights("early-exit", target, required=False)
        if folder is not None:
            return smol_build.early_exit(target, folder)
    return early_exit_drafter(target, _zoo_exit_layer() if exit_layer is None else exit_layer)


def _trained_heads(kind: str, drafter_class, build_smol):
    """eagle / medusa: the weights trained for this target (SmolLM2's by card, else the zoo's), or ``folder=``."""
    def build(target, tokenizer=None, folder: str | Path | None = None):
        folder = Path(folder) if folder is not None else find_weights(kind, target)
        if folder is not None and (folder / CARD).exists():
            return build_smol(target, folder)
        return drafter_class.from_folder(target, folder if folder is not None else ZOO_DIR / kind)

    return build


@functools.lru_cache(maxsize=2)
def _stdlib_datastore(tokenizer, max_chars: int) -> tuple[tuple[int, ...], ...]:
    """The running Python's standard library source, tokenized: a datastore every machine has offline."""
    texts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return tuple(tuple(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in texts)


def _retrieval(target, tokenizer=None, texts=None, datastore_ids=None, max_chars: int = 400_000, **options):
    """REST over ``texts`` (or token ids); by default SmolLM2's own answers for SmolLM2, else the Python standard library's source."""
    if datastore_ids is None and texts is None and DATASTORE.exists() and trained_for_smollm2(target):
        return _smollm2_retrieval(tuple(sorted(options.items())))
    if datastore_ids is None:
        if tokenizer is None:
            raise ValueError("the retrieval drafter needs the target's tokenizer (or datastore_ids) to build its datastore")
        if texts is None:
            return _stdlib_retrieval(tokenizer, max_chars, tuple(sorted(options.items())))
        return RetrievalDrafter.from_texts(texts, tokenizer, **options)
    return RetrievalDrafter(datastore_ids, **options)


def _lookup_then_retrieval(target, tokenizer=None, **options):
    """Prompt lookup, and REST on the steps where it finds no match (``options``: the retrieval drafter's)."""
    return FirstNonEmpty([PromptLookupDrafter(), _retrieval(target, tokenizer, **options)], name="lookup+retrieval")


SUFFIX_MIN_MATCH = 4  # suffix+recycling: the suffix drafter's chain from a match of >= this many tokens, else TR's tree
"""NOT YET MEASURED (a placeholder; SAM-Decoding uses 5): to be set to the threshold of best τ among 1..8 on a few
Spec-Bench questions (counts, not time), e.g. ``build_drafter("suffix+recycling", target, tokenizer, min_match=m)``."""


def _suffix(target, tokenizer=None, texts=None, datastore_ids=None, **options):
    """SAM-Decoding's suffix drafter: the sequence's own automaton, and a static one over ``texts`` / ``datastore_ids``
    (default: SmolLM2's own answers for SmolLM2; none for other targets, whose drafts then come from their context)."""
    if texts is not None:
        if tokenizer is None:
            raise ValueError("the suffix drafter needs the target's tokenizer to read texts (or pass datastore_ids)")
        texts = [texts] if isinstance(texts, str) else texts
        datastore_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    if datastore_ids is not None:
        from .drafters.retrieval import as_documents

        return SuffixDrafter(StaticAutomaton(as_documents(datastore_ids)), **options)
    corpus = _smollm2_corpus() if DATASTORE.exists() and trained_for_smollm2(target) else None
    return SuffixDrafter(corpus, **options)


@functools.lru_cache(maxsize=1)
def _smollm2_corpus() -> StaticAutomaton:
    """The static automaton of SmolLM2's datastore, built once per process (about 5 s; never changes after)."""
    return StaticAutomaton(retrieval_datastore())


def _suffix_then_recycling(target, tokenizer=None, min_match: int = SUFFIX_MIN_MATCH, tree=None, chain=None, **options):
    """SAM-Decoding: the suffix drafter's draft when its match has >= min_match tokens, else Token Recycling's
    (``tree`` / ``chain``: its static tree and chain length; ``options``: the suffix drafter's)."""
    suffix = _suffix(target, tokenizer, min_match=min_match, **options)
    return FirstNonEmpty([suffix, RecyclingDrafter(target, tree=tree, chain=chain)], name="suffix+recycling")


@functools.lru_cache(maxsize=2)
def _smollm2_retrieval(options: tuple) -> RetrievalDrafter:
    """SmolLM2's REST drafter, its datastore indexed once per process (the drafter keeps no run state)."""
    return RetrievalDrafter(retrieval_datastore(), **dict(options))


@functools.lru_cache(maxsize=2)
def _stdlib_retrieval(tokenizer, max_chars: int, options: tuple) -> RetrievalDrafter:
    """The default REST drafter, built once (indexing the datastore takes about a second; the drafter keeps no run state)."""
    return RetrievalDrafter([list(doc) for doc in _stdlib_datastore(tokenizer, max_chars)], **dict(options))


DRAFTERS: dict[str, DrafterEntry] = {e.name: e for e in [
    DrafterEntry("small-model", INDEPENDENT, True, True,
                 "a small LM of the same family drafts autoregressively (Leviathan et al. 2023)",
                 _model_drafter("zoo:drafter-small", "small-model")),
    DrafterEntry("distilled", INDEPENDENT, True, True,
                 "the same small LM distilled on the target's own distributions (DistillSpec, Zhou et al. 2024)",
                 _model_drafter("zoo:drafter-distilled", "distilled")),
    DrafterEntry("distilled+heuristic-γ", INDEPENDENT, True, False,
                 "distilled drafter, γ adapted per step: +2 after a full acceptance, −1 otherwise (transformers)",
                 lambda target, tokenizer=None, **o: HeuristicGamma(_model_drafter("zoo:drafter-distilled", "distilled")(target, tokenizer), **o)),
    DrafterEntry("distilled+confidence", INDEPENDENT, True, True,
                 "distilled drafter that stops drafting once its top probability falls below 0.4 (transformers)",
                 lambda target, tokenizer=None, stop_below=0.4: _model_drafter("zoo:drafter-distilled", "distilled+confidence")(target, tokenizer, stop_below=stop_below)),
    DrafterEntry("retrieval", INDEPENDENT, False, True,
                 "REST: continuations of the longest matching suffix in a datastore of text (He et al. 2023)",
                 _retrieval),
    DrafterEntry("lookup+retrieval", INDEPENDENT, False, True,
                 "prompt lookup, and REST's datastore on the steps where the prompt and output have no match (a cascade)",
                 _lookup_then_retrieval),
    DrafterEntry("suffix", INDEPENDENT, False, True,
                 "suffix automata of the prompt + output and of a corpus: the longest match's frequent continuations "
                 "(SAM-Decoding, Hu et al. 2025; SuffixDecoding, Oliaro et al. 2025)", _suffix),
    DrafterEntry("suffix+recycling", INDEPENDENT, False, True,
                 "the suffix drafter's chain when its match is long enough, else Token Recycling's tree (SAM-Decoding)",
                 _suffix_then_recycling),
    DrafterEntry("early-exit", SELF, True, True,
                 "the target's first layers + its head draft; the full target verifies (LayerSkip, Elhoushi et al. 2024)",
                 _early_exit),
    DrafterEntry("medusa", SELF, True, True,
                 "extra heads on the target's last hidden state guess the next K tokens at once (Cai et al. 2024)",
                 _trained_heads("medusa", MedusaDrafter, smol_build.medusa)),
    DrafterEntry("eagle", SELF, True, True,
                 "a one-layer head extrapolates the target's features autoregressively (EAGLE, Li et al. 2024)",
                 _trained_heads("eagle", EagleDrafter, smol_build.eagle)),
    DrafterEntry("prompt-lookup", SELF, False, True,
                 "copy what followed the last n-gram earlier in the prompt or output (Saxena 2023)",
                 lambda target, tokenizer=None, **o: PromptLookupDrafter(**o)),
    DrafterEntry("recycling", SELF, False, True,
                 "the target's own top-8 next tokens after each token, kept from every forward, read along a tree "
                 "(Token Recycling, Luo et al. 2025); the table persists per target: forget() clears it",
                 lambda target, tokenizer=None, **o: RecyclingDrafter(target, **o)),
    DrafterEntry("lookahead", SELF, False, True,
                 "Jacobi iterations in a window ride along in the verify forward; their n-grams are drafts (Fu et al. 2024)",
                 lambda target, tokenizer=None, **o: LookaheadDrafter(**o)),
]}

def _rule(rule: type[Verifier], summary: str) -> VerifierEntry:
    """A verifier's entry: its abilities are the class's own (declared once, on the class)."""
    return VerifierEntry(rule.name, rule.lossless, rule.tree, summary, rule)


VERIFIERS: dict[str, VerifierEntry] = {e.name: e for e in [
    _rule(GreedyMatch, "keep drafts equal to the target's argmax (lossless for greedy decoding)"),
    _rule(SpeculativeSampling,
          "accept x with min(1, p(x)/q(x)), resample from norm(max(0, p − q)); q one-hot for deterministic drafts"),
    _rule(BlockVerification,
          "judge the draft as one block: keep the longest prefix whose event fires, weights carry surplus forward (Sun et al. 2025)"),
    _rule(TypicalAcceptance, "LOSSY: accept x if p(x) > min(ε, δ·exp(−H(p))) (Medusa)"),
    _rule(TopKMatch, "LOSSY: accept x in the target's top-β within τ nats of the best (SpecDec)"),
    _rule(TreeGreedy, "a tree of drafts in one forward; follow the argmax child (Medusa, SpecInfer)"),
    _rule(TreeSpeculative, "a tree of drafts in one forward; try children in turn, p ← norm(max(0, p − q)) (SpecInfer)"),
]}
assert set(VERIFIERS) == set(RULES), "every verification rule is registered, with a summary"


def _unknown(kind: str, name, table: dict) -> ValueError:
    return ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(table)}")


def build_drafter(name: str, target, tokenizer=None, **options):
    """A ready drafter for ``target`` by registry name; ``options`` go to the method (e.g. max_ngram, exit_layer)."""
    if name not in DRAFTERS:
        raise _unknown("drafter", name, DRAFTERS)
    return DRAFTERS[name].build(target, tokenizer, **options)


def drafter_or_model(name: str, target, tokenizer=None):
    """A drafter by registry name (``"eagle"``, ``"prompt-lookup"``, …), or else a second model by name or folder
    (``"zoo:drafter-distilled"``, a local checkpoint), loaded on the target's device in the target's dtype."""
    if name in DRAFTERS:
        return build_drafter(name, target, tokenizer)
    return load_model(name, target.device, target.dtype)[0]


def build_verifier(name: str, **options):
    """A verifier by registry name, with its options (e.g. epsilon for typical, width for trees)."""
    if name not in VERIFIERS:
        raise _unknown("verifier", name, VERIFIERS)
    return VERIFIERS[name].build(**options)
