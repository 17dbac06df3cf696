"""The workbook's settings in three serving engines' own terms, or a plain statement that an engine has no equivalent.

From a drafter, γ, a verifier and the sampling settings, :func:`translate` gives:

- **transformers** ``generate`` keyword arguments, plus the settings that transformers reads from the ASSISTANT
  model's ``generation_config`` (``num_assistant_tokens``, ``num_assistant_tokens_schedule``,
  ``assistant_confidence_threshold``: ``AssistedCandidateGenerator`` copies them from there, not from ``generate``).
  Checked against transformers 5.24 (``generation/configuration_utils.py``, ``generation/candidate_generator.py``).
- a **vLLM** ``speculative_config`` (``LLM(..., speculative_config=...)`` or ``--speculative-config '<json>'``) and
  its ``SamplingParams``. Checked against vLLM 0.28.0, ``vllm/config/speculative.py``: ``SpeculativeMethod``
  (``ngram``, ``medusa``, ``draft_model``, ``suffix``, ``eagle``, ``eagle3``, …) and ``RejectionSampleMethod`` =
  ``"standard" | "synthetic" | "block"`` (block verification landed in vllm-project/vllm#46781).
- **SGLang** server flags (``python -m sglang.launch_server ...``). Checked against the SGLang documentation
  "Speculative Decoding" and its server-argument reference: ``--speculative-algorithm`` (``EAGLE``, ``EAGLE3``,
  ``STANDALONE``, ``NGRAM``), ``--speculative-draft-model-path``, ``--speculative-num-steps``,
  ``--speculative-eagle-topk``, ``--speculative-num-draft-tokens``, ``--speculative-use-rejection-sampling``
  (EAGLE / EAGLE3 only). Block verification there is an open pull request (sgl-project/sglang#36516), not a release.

What has no equivalent is said, with the reason, never silently dropped: typical acceptance and top-β matching
(lossy rules no engine ships; vLLM's V0 typical-acceptance sampler is gone from V1), lookahead (Jacobi) decoding,
our retrieval datastore, Token Recycling, our suffix
drafter's shipped corpus, early exit outside transformers, adaptive γ outside transformers. Engines load their own
checkpoint formats: a head trained here (EAGLE, Medusa) must be converted to that engine's format first.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from ..registry import DRAFTERS, VERIFIERS
from ..core.validate import is_int

VERSIONS = {"transformers": "5.24", "vllm": "0.28.0", "sglang": "documentation as of 2026-12"}
TRAINING_FREE = {"recycling": "Token Recycling (a table of the target's top-k from earlier forwards)",
                 "suffix": "suffix-automaton drafter (SAM-Decoding / SuffixDecoding)",
                 "suffix+recycling": "suffix-automaton drafter or Token Recycling"}
MODEL_DRAFTERS = ("small-model", "distilled", "distilled+heuristic-γ", "distilled+confidence")


@dataclass(frozen=True)
class ServeSettings:
    """What a workbook run was: drafter and verifier by registry name, γ, and the sampling settings."""

    drafter: str
    verifier: str = "speculative"
    gamma: int = 4
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    target: str = "<target checkpoint>"
    drafter_path: str = "<drafter checkpoint>"  # the draft model or head, in the engine's own format
    max_ngram: int = 3  # prompt lookup's longest n-gram
    exit_layer: int | None = None  # early exit: the layer the draft leaves at

    def __post_init__(self):
        if self.drafter not in DRAFTERS:
            raise ValueError(f"unknown drafter {self.drafter!r}; valid names: {', '.join(DRAFTERS)}")
        if self.verifier not in VERIFIERS:
            raise ValueError(f"unknown verifier {self.verifier!r}; valid names: {', '.join(VERIFIERS)}")
        if not is_int(self.gamma) or self.gamma < 1:
            raise ValueError(f"gamma must be an int >= 1, got {self.gamma!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.verifier in ("greedy", "tree-greedy")


@dataclass
class Translation:
    """One engine's form of the settings; ``missing`` lists what it cannot express, each with the reason."""

    engine: str
    config: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def text(self) -> str:
        head = f"# {self.engine} ({VERSIONS[self.engine]})"
        lines = [head] + [f"# no equivalent: {m}" for m in self.missing]
        if self.engine == "transformers" and self.config:
            assistant = self.config.get("assistant_generation_config", {})
            lines += [f"assistant_model.generation_config.{k} = {v!r}" for k, v in assistant.items()]
            args = ", ".join(f"{k}={v}" if k == "assistant_model" else f"{k}={v!r}" for k, v in self.config["generate"].items())
            lines.append(f"model.generate(input_ids, {args})")
        elif self.engine == "vllm" and self.config:
            spec = json.dumps(self.config["speculative_config"], ensure_ascii=False)
            lines.append(f"LLM(model={self.config['model']!r}, speculative_config={spec})")
            lines.append(f"SamplingParams({', '.join(f'{k}={v!r}' for k, v in self.config['sampling_params'].items())})")
        elif self.engine == "sglang" and self.config:
            lines.append(" ".join(shlex.quote(a) for a in self.config["command"]))
            lines.append(f"# per request: {json.dumps(self.config['sampling_params'])}")
        return "\n".join(lines)


def _sampling(s: ServeSettings) -> dict:
    out = {"temperature": 0.0 if s.greedy else s.temperature}
    if not s.greedy and s.top_p is not None:
        out["top_p"] = s.top_p
    if not s.greedy and s.top_k is not None:
        out["top_k"] = s.top_k
    return out


def _lossy_or_unknown_verifier(s: ServeSettings, engine: str) -> list[str]:
    if s.verifier in ("typical", "topk-tau"):
        return [f"verifier {s.verifier!r}: a lossy relaxed rule that {engine} does not ship"]
    return []


def assistant_generation_config(gamma: int, schedule: str = "constant", confidence: float = 0.0) -> dict:
    """What transformers reads from the assistant model's ``generation_config``: γ drafts per step, their schedule,
    and the confidence stop (0: off; transformers 5.x defaults to 0.4, which stops drafts early, adaptively)."""
    return {"num_assistant_tokens": gamma, "num_assistant_tokens_schedule": schedule,
            "assistant_confidence_threshold": confidence}


def to_transformers(s: ServeSettings) -> Translation:
    """``model.generate`` keyword arguments (``assistant_model`` stands for the drafter model object) and the
    assistant's generation-config settings. transformers verifies greedily when ``do_sample=False`` and by
    speculative sampling when ``do_sample=True``; it has no block verification and no relaxed rule."""
    t = Translation("transformers")
    t.missing += _lossy_or_unknown_verifier(s, "transformers")
    if s.verifier == "block" and not s.greedy:
        t.missing.append("verifier 'block': transformers verifies token by token only")
    if VERIFIERS[s.verifier].tree:
        t.missing.append(f"verifier {s.verifier!r}: assisted generation checks one chain, not a tree")
    generate = {"do_sample": not s.greedy} | {k: v for k, v in _sampling(s).items() if not s.greedy}
    assistant = {}
    if s.drafter in MODEL_DRAFTERS:
        generate = {"assistant_model": "drafter_model"} | generate
        assistant = assistant_generation_config(s.gamma, "heuristic" if s.drafter.endswith("heuristic-γ") else "constant",
                                                0.4 if s.drafter.endswith("confidence") else 0.0)
    elif s.drafter == "prompt-lookup":
        generate = {"prompt_lookup_num_tokens": s.gamma, "max_matching_ngram_size": s.max_ngram} | generate
    elif s.drafter == "early-exit":
        generate = {"assistant_early_exit": s.exit_layer or "<exit layer>"} | generate
        t.missing.append("our early exit's trained adapter layer: transformers exits straight into the LM head")
    elif s.drafter in TRAINING_FREE:
        t.missing.append(f"drafter {s.drafter!r}: transformers has no {TRAINING_FREE[s.drafter]}; its closest is prompt "
                         "lookup (prompt_lookup_num_tokens), which copies from the prompt and output only")
    else:
        t.missing.append(f"drafter {s.drafter!r}: assisted generation takes a draft model, prompt lookup or early exit only")
    t.config = {"generate": generate, "assistant_generation_config": assistant}
    return t


def to_vllm(s: ServeSettings) -> Translation:
    """``speculative_config`` and ``SamplingParams`` for vLLM 0.28 (V1 engine)."""
    t = Translation("vllm")
    t.missing += _lossy_or_unknown_verifier(s, "vLLM")
    if VERIFIERS[s.verifier].tree:
        t.missing.append(f"verifier {s.verifier!r}: not mapped (this translator gives vLLM chains of γ tokens)")
    spec: dict = {"num_speculative_tokens": s.gamma}
    if s.drafter in ("small-model", "distilled"):
        spec = {"method": "draft_model", "model": s.drafter_path} | spec
    elif s.drafter == "prompt-lookup":
        spec = {"method": "ngram"} | spec | {"prompt_lookup_max": s.max_ngram, "prompt_lookup_min": 1}
    elif s.drafter in ("eagle", "medusa"):
        spec = {"method": s.drafter, "model": s.drafter_path} | spec
    elif s.drafter.startswith("distilled+"):
        spec = {"method": "draft_model", "model": s.drafter_path} | spec
        t.missing.append(f"drafter {s.drafter!r}: the adaptive draft length (vLLM drafts a fixed γ here)")
    elif s.drafter in ("suffix", "suffix+recycling"):  # SuffixDecoding (Arctic Inference's cache), vLLM >= 0.11
        spec = {"method": "suffix"} | spec | {"suffix_decoding_max_spec_factor": 1.0,
                                              "suffix_decoding_min_token_prob": 0.1}
        t.missing.append("our static automaton over a shipped corpus (SmolLM2's answers): vLLM's suffix cache holds "
                         "the outputs of the server's earlier requests instead")
        if s.drafter == "suffix+recycling":
            t.missing.append("Token Recycling's fallback tree: vLLM has no proposer that reads earlier forwards' top-k")
    elif s.drafter == "recycling":
        t.missing.append("drafter 'recycling': vLLM has no proposer that reads earlier forwards' top-k (the closest "
                         "model-free ones, method='ngram' and method='suffix', copy text instead)")
    else:
        t.missing.append(f"drafter {s.drafter!r}: vLLM has no such proposer")
    if s.verifier == "block" and not s.greedy:
        spec["rejection_sample_method"] = "block"
        if s.drafter == "prompt-lookup":
            t.missing.append("block verification needs draft probabilities; vLLM's n-gram drafts have none, so it "
                             "falls back to the standard rule")
    t.config = {"model": s.target, "speculative_config": spec, "sampling_params": _sampling(s)}
    return t


def to_sglang(s: ServeSettings) -> Translation:
    """``sglang.launch_server`` flags; sampling settings go with each request."""
    t = Translation("sglang")
    t.missing += _lossy_or_unknown_verifier(s, "SGLang")
    command = ["python", "-m", "sglang.launch_server", "--model-path", s.target]
    chain = ["--speculative-num-steps", str(s.gamma), "--speculative-eagle-topk", "1",
             "--speculative-num-draft-tokens", str(s.gamma + 1)]
    if s.drafter in ("small-model", "distilled"):
        command += ["--speculative-algorithm", "STANDALONE", "--speculative-draft-model-path", s.drafter_path] + chain
    elif s.drafter == "eagle":
        command += ["--speculative-algorithm", "EAGLE", "--speculative-draft-model-path", s.drafter_path] + chain
        if s.verifier in ("speculative", "block") and not s.greedy:
            command.append("--speculative-use-rejection-sampling")  # q-aware, token by token (EAGLE / EAGLE3 only)
    elif s.drafter == "prompt-lookup":
        command += ["--speculative-algorithm", "NGRAM", "--speculative-num-draft-tokens", str(s.gamma),
                    "--speculative-ngram-max-match-window-size", str(s.max_ngram)]
        t.missing.append("SGLang's NGRAM drafts from a cache of earlier text (CUDA only), not from this prompt alone")
    elif s.drafter.startswith("distilled+"):
        command += ["--speculative-algorithm", "STANDALONE", "--speculative-draft-model-path", s.drafter_path] + chain
        t.missing.append(f"drafter {s.drafter!r}: the adaptive draft length")
    else:
        t.missing.append(f"drafter {s.drafter!r}: SGLang has no such speculative algorithm")
    if s.verifier == "block" and not s.greedy:
        t.missing.append("verifier 'block': not in an SGLang release (open pull request sgl-project/sglang#36516)")
    if VERIFIERS[s.verifier].tree and s.drafter == "eagle":
        command[command.index("--speculative-eagle-topk") + 1] = "4"  # a tree: SGLang's default branching
    elif VERIFIERS[s.verifier].tree:
        t.missing.append(f"verifier {s.verifier!r}: SGLang grows trees for EAGLE only")
    t.config = {"command": command, "sampling_params": _sampling(s)}
    return t


def translate(s: ServeSettings) -> list[Translation]:
    """The settings for transformers, vLLM and SGLang, in that order."""
    return [to_transformers(s), to_vllm(s), to_sglang(s)]


def transformers_generate_kwargs(s: ServeSettings, drafter_model=None) -> dict:
    """The transformers form, ready to run: sets the assistant's generation config on ``drafter_model`` and returns
    the ``generate`` keyword arguments with the model object in place. Refuses what transformers cannot express."""
    t = to_transformers(s)
    if not t.complete:
        raise ValueError("transformers has no equivalent for: " + "; ".join(t.missing))
    kwargs = dict(t.config["generate"])
    if "assistant_model" in kwargs:
        if drafter_model is None:
            raise ValueError(f"drafter {s.drafter!r} runs as assistant_model=: pass drafter_model (the draft model)")
        for key, value in t.config["assistant_generation_config"].items():
            setattr(drafter_model.generation_config, key, value)
        kwargs["assistant_model"] = drafter_model
    return kwargs
