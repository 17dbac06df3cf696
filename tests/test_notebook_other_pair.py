"""The notebooks take any model pair through their settings cell: notebook 2 runs on two other (tiny, local) models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from specdec_lab.models.loading import ZOO_DIR
from project_scripts import load_script

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_draft_then_verify.ipynb"
notebook_tool = load_script("tools/notebooks.py")


def tiny_checkpoint(folder: Path, seed: int, tokenizer) -> Path:
    import torch

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1 + seed,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def with_settings(nb, **values):
    """Replace the value of each NAME = ... line of the cell tagged 'parameters' (the notebook's settings cell)."""
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    for name, value in values.items():
        cell.source, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", cell.source, flags=re.M)
        assert n == 1, f"no {name} in the settings cell"
    return nb


@pytest.mark.notebook
def test_notebook_two_runs_on_another_local_pair(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(ZOO_DIR / "target")
    target = tiny_checkpoint(tmp_path / "tiny-target", 1, tokenizer)
    drafter = tiny_checkpoint(tmp_path / "tiny-drafter", 0, tokenizer)
    solved = notebook_tool.with_exercises(json.loads(NOTEBOOK.read_text(encoding="utf-8")), solved=True)
    nb = with_settings(nbformat.reads(json.dumps(solved), as_version=4), TARGET=str(target), DRAFTER=str(drafter),
                       DEVICE="cpu")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert text.count("identical: True") == 4 and "identical: False" not in text  # greedy equality on the other pair
    assert "correct:" in text  # the exercise's check passes with its solution on the other pair too
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    loaded = json.dumps([c.source for c in nb.cells])
    assert str(target) in loaded and "zoo:target" not in loaded
