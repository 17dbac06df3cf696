"""Every bad input a user can give (API, widgets, CLI, model loader, registry, question files), tried, and the
message it produced, written as a table to docs/bad_input.md. The test fails if the table in the docs is stale:
regenerate it with ``SPECDEC_LAB_WRITE_DOCS=1 pytest tests/test_bad_input_table.py``."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from specdec_lab import build_drafter, build_verifier, generate_speculative
from specdec_lab.bench import read_questions
from specdec_lab.cli import main as cli_main
from specdec_lab.models.loading import load_model
from specdec_lab.core.lm import check_same_tokenizer
from specdec_lab.verifiers import TypicalAcceptance
from specdec_lab.lab.viz.playground import Playground

from bad_input_outcome import outcome as _outcome
from conftest import tiny_gpt2, tiny_llama
from test_bad_input import CASES, EmptyDrafter, _word_tokenizer

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_input.md"
MAX_CHARS = 220


def _short(message: str, tmp: Path) -> str:
    message = " ".join(str(message).replace(str(tmp), "<tmp>").split())
    message = message.replace("|", "\\|")
    return message if len(message) <= MAX_CHARS else message[: MAX_CHARS - 1] + "…"


def _value(v) -> str:
    text = repr(v)
    return text if len(text) <= 30 else text[:29] + "…"




def _cli(args: list[str], capsys) -> tuple[str, str]:
    capsys.readouterr()  # drop what earlier steps wrote (progress bars)
    kind, message = _outcome(lambda: cli_main(args))
    captured = capsys.readouterr().err.strip()
    return ("exit code 2", captured) if captured else (kind, message)


def test_every_bad_input_gets_a_clear_message(capsys, tmp_path, monkeypatch):
    target, drafter = tiny_llama(seed=0, context=64), tiny_llama(layers=1, seed=1, context=64)
    zoo, zoo_tokenizer = load_model("zoo:target", "cpu")
    rows = []

    for kwargs, _, _ in CASES:  # the engine's argument checks (tests/test_bad_input.py asserts each message)
        args = dict(input_ids=[1, 2, 3], gamma=4, max_new_tokens=8) | kwargs
        shown = ", ".join(f"{k}={_value(v)}" for k, v in kwargs.items())
        rows.append(("API generate_speculative", shown, *_outcome(lambda: generate_speculative(target, drafter, **args))))

    nan_model = tiny_gpt2(seed=0)
    with torch.no_grad():
        nan_model.lm_head.weight[3, 0] = float("nan")
    bert = BertModel(BertConfig(vocab_size=96, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    api = [
        ("NaN in the target's logits", lambda: generate_speculative(nan_model, drafter, [1, 2], max_new_tokens=3, temperature=1.0)),
        ("drafter with another vocabulary (120 vs 96)", lambda: generate_speculative(target, tiny_llama(layers=1, vocab=120), [1, 2], max_new_tokens=4)),
        ("drafter that is not a causal LM (BERT)", lambda: generate_speculative(target, bert, [1, 2], max_new_tokens=4)),
        ("a drafter that proposes nothing", lambda: generate_speculative(target, EmptyDrafter(), [1, 2], max_new_tokens=4)),
        ("tokenizers with other ids for the same words", lambda: check_same_tokenizer(
            _word_tokenizer(["<unk>", "<eos>", "to", "be"]), _word_tokenizer(["<unk>", "<eos>", "be", "to"]))),
        ("tree verifier with a drafter that cannot branch", lambda: generate_speculative(
            zoo, build_drafter("distilled+heuristic-γ", zoo), [1, 2], verifier="tree-greedy", max_new_tokens=4)),
    ]
    rows += [("API", label, *_outcome(fn)) for label, fn in api]

    from test_engine_v2 import OutOfRange, _sliding  # the engine-v2 defects, tried here for their messages

    sliding = _sliding("mistral")
    engine_v2 = [
        ("temperature=1e-40 (overflows logits / T)", lambda: generate_speculative(target, drafter, [1, 2], temperature=1e-40, max_new_tokens=4)),
        ("temperature=1e-38", lambda: generate_speculative(target, drafter, [1, 2], temperature=1e-38, max_new_tokens=4)),
        ("seed=2**64", lambda: generate_speculative(target, drafter, [1, 2], seed=2**64, max_new_tokens=4)),
        ("seed=1.5", lambda: generate_speculative(target, drafter, [1, 2], seed=1.5, max_new_tokens=4)),
        ("eos_token_id='2' (a string)", lambda: generate_speculative(target, drafter, [1, 2], eos_token_id="2", max_new_tokens=4)),
        ("eos_token_id=2.0 (a float)", lambda: generate_speculative(target, drafter, [1, 2], eos_token_id=2.0, max_new_tokens=4)),
        ("eos_token_id=-1", lambda: generate_speculative(target, drafter, [1, 2], eos_token_id=-1, max_new_tokens=4)),
        ("eos_token_id=10**6", lambda: generate_speculative(target, drafter, [1, 2], eos_token_id=10**6, max_new_tokens=4)),
        ("input_ids={'ids': [1, 2]} (a mapping without input_ids)", lambda: generate_speculative(target, drafter, {"ids": [1, 2]}, max_new_tokens=4)),
        ("a drafter that proposes token id 10**6", lambda: generate_speculative(target, OutOfRange(10**6), [1, 2], gamma=2, max_new_tokens=4)),
        ("a drafter that proposes token id -1", lambda: generate_speculative(target, OutOfRange(-1), [1, 2], gamma=2, max_new_tokens=4)),
        ("a retrieval datastore from another tokenizer (ids 500, 501)", lambda: generate_speculative(
            target, build_drafter("retrieval", target, datastore_ids=[[1, 2, 500, 501]]), [1, 2], gamma=2, max_new_tokens=4)),
        ("a Mistral target with sliding_window=24, 8 + 17 tokens", lambda: generate_speculative(
            sliding, _sliding("mistral"), list(range(8)), max_new_tokens=17, verifier="tree-greedy")),
        ("early exit on a 1-layer target", lambda: build_drafter("early-exit", tiny_llama(layers=1), exit_layer=1)),
    ]
    rows += [("API (engine v2)", label, *_outcome(fn)) for label, fn in engine_v2]

    registry = [
        ("build_drafter('nope')", lambda: build_drafter("nope", zoo)),
        ("build_verifier('nope')", lambda: build_verifier("nope")),
        ("prompt lookup with max_ngram=0", lambda: build_drafter("prompt-lookup", zoo, max_ngram=0)),
        ("typical acceptance with epsilon=0", lambda: TypicalAcceptance(epsilon=0.0)),
    ]
    rows += [("registry", label, *_outcome(fn)) for label, fn in registry]

    (tmp_path / "empty").mkdir()
    custom = tmp_path / "custom-code"
    tiny_llama(layers=1).save_pretrained(custom)
    config = json.loads((custom / "config.json").read_text())
    (custom / "config.json").write_text(json.dumps(config | {"auto_map": {"AutoModelForCausalLM": "evil.EvilModel"}}))
    (custom / "evil.py").write_text("raise SystemExit('custom code ran')\n")
    BertModel(BertConfig(vocab_size=96, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path / "bert")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loader = [
        ("load_model('zoo:nope')", lambda: load_model("zoo:nope")),
        ("load_model('') (empty name)", lambda: load_model("")),
        ("a folder that does not exist", lambda: load_model("./no/such/folder")),
        ("a folder without config.json", lambda: load_model(str(tmp_path / "empty"))),
        ("a folder holding a model that is not a causal LM (BERT)", lambda: load_model(str(tmp_path / "bert"))),
        ("a hub name while offline (typo or not)", lambda: load_model("someorg/no-such-model")),
        ("a folder with custom code (config.json has auto_map)", lambda: load_model(str(custom))),
    ]
    rows += [("model loader", label, *_outcome(fn)) for label, fn in loader]
    monkeypatch.delenv("HF_HUB_OFFLINE")

    bad_file = tmp_path / "q.jsonl"
    bad_file.write_text('{"category": "x"}\n')
    string_turns = tmp_path / "turns.jsonl"
    string_turns.write_text('{"question_id": 7, "category": "x", "turns": "ROMEO"}\n')
    long_prompt = tmp_path / "long.jsonl"
    long_prompt.write_text('{"question_id": 9, "category": "x", "turns": ["%s"]}\n' % ("ROMEO and JULIET " * 400))
    (tmp_path / "a-file").write_text("not a folder")
    rows += [("question file", '"turns": "ROMEO" (a string, not a list)', *_outcome(lambda: read_questions(string_turns)))]
    rows += [("question file", "a line without turns", *_outcome(lambda: read_questions(bad_file))),
             ("question file", "a task the file does not have", *_outcome(lambda: read_questions(tasks=["poetry"])))]

    cli = [
        ("demo --prompt '   '", ["demo", "--prompt", "   "]),
        ("demo --gamma 0", ["demo", "--gamma", "0"]),
        ("demo --temperature -1", ["demo", "--temperature", "-1"]),
        ("demo --target zoo:nope", ["demo", "--target", "zoo:nope"]),
        ("bench --methods nope+greedy", ["bench", "--methods", "nope+greedy", "--prompts-per-task", "1", "--out", str(tmp_path / "r")]),
        ("bench --new-tokens 0", ["bench", "--new-tokens", "0", "--out", str(tmp_path / "r")]),
        ("bench --tasks poetry", ["bench", "--tasks", "poetry", "--out", str(tmp_path / "r")]),
        ("demo --device foo", ["demo", "--device", "foo"]),
        ("demo --device cuda (no CUDA here)", ["demo", "--device", "cuda"]),
        ("demo --temperature 1e-40", ["demo", "--temperature", "1e-40"]),
        ("demo --seed 18446744073709551616", ["demo", "--seed", str(2**64)]),
        ("bench --out an existing file", ["bench", "--out", str(tmp_path / "a-file"), "--no-hf", "--no-probe"]),
        ("bench with a prompt longer than the context", ["bench", "--questions", str(long_prompt), "--no-hf", "--no-probe",
                                                          "--methods", "prompt-lookup+greedy", "--out", str(tmp_path / "r")]),
        ("bench --methods distilled+heuristic-γ+tree-greedy (cannot branch)", ["bench", "--methods", "distilled+heuristic-γ+tree-greedy",
                                                                              "--no-hf", "--no-probe", "--out", str(tmp_path / "r")]),
    ]
    rows += [("CLI specdec-lab", label, *_cli(args, capsys)) for label, args in cli]

    pg = Playground(zoo, zoo_tokenizer, prompt="ROMEO.\n", max_new_tokens=8, background=False)
    before = pg.output.value
    widget = []
    for label, change in [
        ("empty prompt", lambda: setattr(pg.prompt, "value", "")),
        ("whitespace-only prompt", lambda: setattr(pg.prompt, "value", " \n\t ")),
        ("prompt longer than the context (600 words)", lambda: setattr(pg.prompt, "value", "word " * 600)),
    ]:
        change()
        pg.run_button.click()
        widget.append((label, pg.error))
        assert pg.output.value == before  # the error left the previous result in place
    pg.prompt.value = "ROMEO.\n"
    pg.verifier.value = "tree-greedy"  # with the distilled drafter: a valid run
    before = pg.output.value
    pg.drafter.value = "distilled+heuristic-γ"
    widget.append(("tree verifier with a drafter that cannot branch", pg.error))
    assert pg.output.value == before
    rows += [("playground widget", label, "shown in the widget", message or "") for label, message in widget]

    for module in sorted(Path(__file__).parent.glob("bad_input_rows_*.py")):  # v3 probes, one module per area
        rows += importlib.import_module(module.stem).rows(tmp_path, monkeypatch)

    missing = [(where, what) for where, what, kind, message in rows if kind == "(no error)" or not message]
    assert not missing, f"inputs that were accepted silently: {missing}"
    table = ["# Bad input: what each one says", "",
             "Generated by `tests/test_bad_input_table.py`, which tries every input below and fails if this file is stale",
             "(regenerate: `SPECDEC_LAB_WRITE_DOCS=1 .venv/bin/python -m pytest tests/test_bad_input_table.py`).",
             "Widgets show the message in the widget and keep the previous result; the CLI prints `error: ...` and exits with 2.", "",
             "| where | input | error | message |", "|---|---|---|---|"]
    table += [f"| {where} | {_short(what, tmp_path)} | {kind} | {_short(message, tmp_path)} |" for where, what, kind, message in rows]
    text = "\n".join(table) + "\n"
    if os.environ.get("SPECDEC_LAB_WRITE_DOCS") == "1":
        DOC.write_text(text, encoding="utf-8")
    assert DOC.exists() and DOC.read_text(encoding="utf-8") == text, "docs/bad_input.md is stale: regenerate it (see the docstring)"
