"""Bad-input rows for the model loader, v3 (issue 33: items 2, 10, 13): weights that do not fill their config, a
full disk while converting SmolLM2, a file in place of its cache, devices and dtypes, pickle-only folders.

What is now right rather than an error (a damaged cache rebuilt, a broken link replaced, stale temporary folders
removed, control tokens in a chat message kept as text) is tested in tests/test_loading_v3.py instead."""

from __future__ import annotations

import contextlib
import errno
import io
import shutil
from types import SimpleNamespace

import torch
from safetensors.torch import load_file

from bad_input_outcome import outcome
from conftest import tiny_gpt2

from test_loading_v3 import _folder  # the tiny saved model with an edited config, as the tests build it

WHERE = "model loader (v3)"




def _cli(args) -> tuple[str, str]:
    from specdec_lab.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        kind, message = outcome(lambda: main(args))
    return ("exit code 2", err.getvalue().strip()) if err.getvalue().strip() else (kind, message)


def rows(tmp_path, monkeypatch) -> list[tuple[str, str, str, str]]:
    import transformers

    from specdec_lab.models import smollm2
    from specdec_lab.models.loading import load_model

    root = tmp_path / "loading_v3"
    root.mkdir()
    as_gpt2 = _folder(root, "llama-as-gpt2")
    shutil.copy(_folder(root, "gpt2", model=tiny_gpt2()) / "config.json", as_gpt2 / "config.json")
    more_layers = _folder(root, "more-layers", num_hidden_layers=4)
    fewer_layers = _folder(root, "fewer-layers", num_hidden_layers=1)
    vocab = _folder(root, "vocab", vocab_size=100)
    pickled = _folder(root, "pickled")
    torch.save(load_file(str(pickled / "model.safetensors")), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    no_weights = _folder(root, "no-weights")
    (no_weights / "model.safetensors").unlink()

    def weights_only(folder):  # the tokenizer is not what these rows try
        with monkeypatch.context() as m:
            m.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: None)
            load_model(str(folder), "cpu")

    def no_cuda():
        with monkeypatch.context() as m:
            m.setattr(torch.cuda, "is_available", lambda: False)
            load_model("zoo:target", device="cuda")

    def converting(convert, cache):
        with monkeypatch.context() as m:
            m.setenv("SPECDEC_LAB_CACHE", str(cache))
            m.setattr(smollm2, "_convert", convert)
            m.setattr(smollm2.shutil, "disk_usage", lambda path: SimpleNamespace(free=12 << 20))  # 12 MB free
            smollm2.converted_folder(verbose=False)

    def disk_full(gguf, into):
        from safetensors import SafetensorError

        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                              '"No space left on device" })')

    def enospc(gguf, into):
        raise OSError(errno.ENOSPC, "No space left on device")

    def never(gguf, into):
        raise AssertionError("converted although the cache path is a file")

    file_cache = root / "file-cache"
    file_cache.mkdir()
    (file_cache / smollm2.FOLDER_NAME).write_text("someone's file")
    probes = [
        ("Llama weights under a config saying model_type gpt2", lambda: weights_only(as_gpt2)),
        ("a config claiming 4 layers over 2-layer weights", lambda: weights_only(more_layers)),
        ("a config claiming 1 layer over 2-layer weights", lambda: weights_only(fewer_layers)),
        ("a config with vocab_size 100 over 96-row embeddings", lambda: weights_only(vocab)),
        ("a folder whose weights are pytorch_model.bin only (a pickle)", lambda: load_model(str(pickled), "cpu")),
        ("a folder with config.json but no weights", lambda: load_model(str(no_weights), "cpu")),
        ("load_model(device='gpu')", lambda: load_model("zoo:target", device="gpu")),
        ("load_model(device='cuda') on a machine without CUDA", no_cuda),
        ("load_model(dtype=torch.int8)", lambda: load_model("zoo:target", "cpu", torch.int8)),
        ("SmolLM2 conversion on a full disk, 12 MB free (the writer raises SafetensorError, os error 28)",
         lambda: converting(disk_full, root / "full-disk")),
        ("SmolLM2 conversion on a full disk, 12 MB free (OSError ENOSPC)",
         lambda: converting(enospc, root / "full-disk-2")),
        ("a plain file where the SmolLM2 cache folder goes", lambda: converting(never, file_cache)),
    ]
    found = [(WHERE, label, *outcome(fn)) for label, fn in probes]
    found.append((WHERE, "specdec-lab demo --target <a pickle-only folder>",
                  *_cli(["demo", "--target", str(pickled), "--device", "cpu"])))
    return found
