"""The bottom layer: values and pure kernels every other layer uses (no drafter, verifier or model loading here)."""
