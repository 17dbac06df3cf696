"""The bundled model zoo: loads offline, every drafter is lossless, the measured table is reproducible."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.cli import main as cli_main
from specdec_lab.models.loading import ZOO_DIR, ZOO_MODELS, load_model, load_pair
from specdec_lab.models.zoo.heads import MedusaHeads
from specdec_lab.bench.zoo_report import TABLE_END, TABLE_START, acceptance, drafters, heldout_prompts, measure, table


@pytest.fixture(scope="module")
def zoo():
    target, tokenizer = load_model("zoo:target", "cpu")
    return target, tokenizer, drafters(target)


def test_zoo_fits_the_size_budget():
    total = sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file())
    assert total < 40e6


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_every_model_is_a_standard_checkpoint_folder(name):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = ZOO_DIR / name
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert model.config.model_type == "llama" and len(tok) == model.config.vocab_size
    text = "KING LEAR.\nBlow, winds, and crack your cheeks!\n    def f(self):\n"
    assert tok.decode(tok(text)["input_ids"]) == text
    card = (folder / "README.md").read_text()
    assert "held-out loss" in card and "python -m specdec_lab.models.zoo.train" in card


def test_medusa_heads_load_and_read_the_target(zoo):
    target, _, _ = zoo
    heads = MedusaHeads.load(ZOO_DIR / "medusa")
    h = torch.zeros(5, target.config.hidden_size)
    assert heads(h).shape == (len(heads.blocks), 5, target.config.hidden_size)


def test_greedy_output_with_every_bundled_drafter_equals_the_target(zoo):
    target, tokenizer, bundled = zoo
    for text in heldout_prompts(4):
        ids = tokenizer(text)["input_ids"]
        ref = generate_autoregressive(target, ids, max_new_tokens=24).token_ids
        for name, drafter in bundled.items():
            assert generate_speculative(target, drafter, ids, gamma=4, max_new_tokens=24).token_ids == ref, name


def test_the_table_recomputes(zoo):
    """A smaller run of the README's measurement: same structure, same ordering of drafters."""
    result = measure(n_prompts=3)
    for name, row in result["drafters"].items():
        for setting in ("greedy", "t1"):
            assert 0.0 <= row[setting]["alpha"] <= 1.0
            assert 1.0 <= row[setting]["tokens_per_step"] <= 5.0
        assert row["c"] > 0
    assert all(0.0 <= a <= 1.0 for a in result["medusa_agreement"])
    assert "| drafter-distilled |" in table(result)
    readme = (ZOO_DIR.parent / "README.md").read_text()
    assert TABLE_START in readme and TABLE_END in readme


def test_distillation_raises_acceptance(zoo):
    """The teaching claim of the zoo: a drafter trained on the target's own distributions agrees with it more."""
    target, tokenizer, bundled = zoo
    ids = [tokenizer(t)["input_ids"] for t in heldout_prompts(6)]
    small = acceptance(target, bundled["drafter-small"], ids, gamma=4, temperature=1.0)
    distilled = acceptance(target, bundled["drafter-distilled"], ids, gamma=4, temperature=1.0)
    assert distilled["alpha"] > small["alpha"]


def test_loading_the_zoo_never_touches_the_network(tmp_path):
    """In a fresh interpreter with every socket connection refused and the hub offline."""
    script = f"""
import socket
def refuse(*a, **k):
    raise RuntimeError("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
from specdec_lab.models.loading import load_pair, load_model
target, drafter, tok = load_pair("zoo:target", "zoo:drafter-small", device="cpu")
print("loaded", type(target).__name__, len(tok))
try:
    load_model("gpt2")
except OSError as err:
    print("hub:", err)
"""
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "loaded LlamaForCausalLM" in done.stdout
    assert "the hub is offline here" in done.stdout


def test_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown zoo model 'zoo:giant'; the zoo has: zoo:target"):
        load_model("zoo:giant")
    with pytest.raises(FileNotFoundError, match="no model folder at './missing'"):
        load_model("./missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a transformers model folder"):
        load_model(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="non-empty string"):
        load_model("  ")
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    DistilBertModel(config).save_pretrained(tmp_path / "encoder")  # an encoder: no causal-LM class exists for it
    with pytest.raises(TypeError, match="'.*encoder' \\(distilbert\\) is not a causal language model"):
        load_model(str(tmp_path / "encoder"))


def test_demo_prints_every_step(capsys):
    assert cli_main(["demo", "--max-new-tokens", "10", "--gamma", "3", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "step   0" in out and "draft yield (accepted ÷ drafted)" in out and "✓ accepted draft" in out
    assert "\x1b[" not in out
    assert cli_main(["demo", "--max-new-tokens", "6", "--color", "always"]) == 0
    assert "\x1b[32m" in capsys.readouterr().out


def test_demo_reports_bad_input(capsys):
    assert cli_main(["demo", "--gamma", "0"]) == 2
    assert "gamma must be between 1 and 64" in capsys.readouterr().err
    assert cli_main(["demo", "--drafter", "zoo:nope"]) == 2
    assert "unknown zoo model" in capsys.readouterr().err


def test_live_distillation_moves_the_student_toward_the_teacher():
    """distill_live (notebook 4's two-minute demo): KL(p_teacher || q_student) on held-out text goes down."""
    import torch.nn.functional as F

    from specdec_lab.models.zoo.train import distill_live

    from conftest import tiny_llama

    teacher, student = tiny_llama(layers=2, seed=0), tiny_llama(layers=1, seed=7)
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, 96, (6, 20), generator=g).tolist()
    probe = torch.randint(0, 96, (4, 24), generator=g)

    def kl() -> float:
        with torch.no_grad():
            p_log, q_log = teacher(probe).logits.log_softmax(-1), student(probe).logits.log_softmax(-1)
        return F.kl_div(q_log.flatten(0, 1), p_log.flatten(0, 1), log_target=True, reduction="batchmean").item()

    before = kl()
    losses = distill_live(student, teacher, prompts, steps=40, batch=4, prompt_len=8, new_tokens=16, sequences=12, lr=1e-2)
    assert len(losses) == 40 and not student.training
    assert kl() < 0.7 * before
    with pytest.raises(ValueError, match="prompt_len"):
        distill_live(student, teacher, [[1, 2]], prompt_len=8)
