"""The three attacks of He, Zhang, Lee (ACSAC 2019) behind one interface; see ``base``."""

from cloud_side.attacks import blackbox, queryfree, whitebox  # noqa: F401  (registers the attacks)
from cloud_side.attacks.base import Attack, AttackError, Knowledge, list_attacks, list_presets, make_attack

__all__ = ["Attack", "AttackError", "Knowledge", "list_attacks", "list_presets", "make_attack"]
