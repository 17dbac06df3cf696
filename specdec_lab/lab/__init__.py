"""Teaching on top of everything: exercises and their checks, the bug lab, replay of recorded steps, the widgets (viz/).

Imported in a Jupyter kernel, it chooses the torch thread count the workbook runs with and says so once
(:mod:`.threads`).
"""

from .threads import announce_once

announce_once()
