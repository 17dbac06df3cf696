"""Medusa heads moved to drafters/medusa_heads.py (the drafter layer must not import the zoo); kept as an alias."""

from ...drafters.medusa_heads import MedusaHeads

__all__ = ["MedusaHeads"]
