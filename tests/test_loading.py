"""load_model never runs code from a model folder, and says what actually went wrong when loading fails."""

from __future__ import annotations

import builtins
import json

import pytest
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from specdec_lab.models.loading import load_model

WORDS = ["<unk>", "<eos>", "to", "be", "or", "not"]


def _tiny_folder(folder):
    """A real local model folder: a 1-layer Llama and a word-level tokenizer, saved with save_pretrained."""
    cfg = LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>").save_pretrained(folder)
    return folder


def _edit_json(path, **changes):
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(data | changes), encoding="utf-8")


@pytest.fixture
def no_prompt(monkeypatch):
    """Every input() call is recorded (and answered 'n'): transformers' "run the custom code? [y/N]" must never ask."""
    asked = []

    def fake_input(prompt=""):
        asked.append(prompt)
        return "n"

    monkeypatch.setattr(builtins, "input", fake_input)
    return asked


def test_a_plain_folder_loads(tmp_path, no_prompt):
    folder = _tiny_folder(tmp_path / "plain")
    model, tokenizer = load_model(str(folder), "cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    assert tokenizer("to be or not")["input_ids"] == [2, 3, 4, 5]
    assert no_prompt == []


EVIL = """
from pathlib import Path
Path(__file__).with_name("MARKER").write_text("the folder's own code ran")
class EvilModel: pass
class EvilConfig: pass
class EvilTokenizer: pass
"""


@pytest.mark.parametrize("where", ["known model_type", "unknown model_type", "tokenizer_config"])
def test_a_folder_asking_to_run_its_code_is_refused(tmp_path, no_prompt, where):
    """auto_map in config.json (with an architecture transformers ships or not) or in tokenizer_config.json:
    a ValueError naming auto_map, no prompt, and evil.py never imported."""
    folder = _tiny_folder(tmp_path / "custom")
    (folder / "evil.py").write_text(EVIL, encoding="utf-8")
    if where == "known model_type":  # transformers would quietly load its own Llama and ignore the custom class
        _edit_json(folder / "config.json", auto_map={"AutoModelForCausalLM": "evil.EvilModel"})
    elif where == "unknown model_type":  # transformers would ask "run the custom code? [y/N]" and run it on "y"
        _edit_json(folder / "config.json", model_type="evil",
                   auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"})
    else:
        _edit_json(folder / "tokenizer_config.json", auto_map={"AutoTokenizer": ["evil.EvilTokenizer", None]})
    with pytest.raises(ValueError, match=r"asks to run its own Python code \((config|tokenizer_config)\.json has "
                                         r"auto_map: .*evil\.Evil.*never runs code from a model folder"):
        load_model(str(folder), "cpu")
    assert not (folder / "MARKER").exists()
    assert no_prompt == []


def test_every_from_pretrained_gets_trust_remote_code_false(tmp_path, monkeypatch):
    folder = _tiny_folder(tmp_path / "plain")
    seen = []
    for auto in (transformers.AutoConfig, transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = auto.from_pretrained

        def spy(*args, _original=original, _auto=auto, **kwargs):
            seen.append((_auto.__name__, kwargs.get("trust_remote_code", "missing")))
            return _original(*args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", spy)
    load_model(str(folder), "cpu")
    assert {auto for auto, _ in seen} == {"AutoConfig", "AutoModelForCausalLM", "AutoTokenizer"}
    assert all(trust is False for _, trust in seen), seen


def test_broken_folders_say_the_folder_exists(tmp_path):
    folder = _tiny_folder(tmp_path / "broken")
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="the folder exists but its config.json cannot be read as JSON"):
        load_model(str(folder), "cpu")
    (folder / "config.json").write_text(json.dumps({"model_type": "no-such-arch"}), encoding="utf-8")
    with pytest.raises(ValueError, match="the folder exists but its config.json has model_type 'no-such-arch', "
                                         "which this transformers .* does not ship"):
        load_model(str(folder), "cpu")
    (folder / "config.json").write_text(json.dumps({"hidden_size": 16}), encoding="utf-8")
    with pytest.raises(ValueError, match="the folder exists but its config.json has no model_type"):
        load_model(str(folder), "cpu")


@pytest.mark.parametrize("error, expected", [
    (ValueError("The repository evil/model contains custom code which must be executed to correctly load the model. "
                "Please pass the argument `trust_remote_code=True` to allow custom code to be run."),
     r"'evil/model' on the hub asks to run its own Python code .*never runs code"),
    (OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the "
             "cached files."), r"no local folder by that name, and the Hugging Face hub could not be reached"),
    (OSError("evil/model is not a local folder and is not a valid model identifier listed on "
             "'https://huggingface.co/models'"), r"the Hugging Face hub has no model of that name"),
    (OSError("500 Server Error"), r"cannot load 'evil/model' from the Hugging Face hub .*500 Server Error"),
])
def test_hub_errors_say_what_happened(monkeypatch, error, expected):
    """A hub name: custom code, an unreachable hub, an unknown name and other hub errors each get their own message."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def fail(source, **kwargs):
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", fail)
    with pytest.raises(type(error), match=expected) as caught:
        load_model("evil/model", "cpu")
    assert "not a local model folder, and the hub did not provide it" not in str(caught.value)
    assert calls == [{"local_files_only": False, "trust_remote_code": False}]


def test_offline_hub_name_says_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="the hub is offline here"):
        load_model("someorg/no-such-model", "cpu")


def test_drafter_or_model_takes_a_registry_name_or_a_second_model():
    import torch

    from specdec_lab.models.loading import load_model
    from specdec_lab.registry import drafter_or_model

    target, tokenizer = load_model("zoo:target")
    lookup = drafter_or_model("prompt-lookup", target, tokenizer)
    assert lookup.name == "prompt-lookup" and not isinstance(lookup, torch.nn.Module)
    second = drafter_or_model("zoo:drafter-distilled", target.to(torch.bfloat16), tokenizer)
    assert isinstance(second, torch.nn.Module) and second.dtype == torch.bfloat16  # in the target's dtype
