"""Teaching on top of everything: exercises and their checks, the bug lab, replay of recorded steps, the widgets (viz/)."""
