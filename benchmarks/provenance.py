"""Where and how a stored benchmark result was made: the command, the machine, the date and the load average."""

from __future__ import annotations

import datetime
import os
import platform
import sys


def provenance(script: str, argv: list[str] | None) -> dict:
    """The fields every stored result starts with; ``argv`` None means this process's own arguments."""
    return {"command": f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})", "date": datetime.date.today().isoformat(),
            "load_before": os.getloadavg()[0]}
