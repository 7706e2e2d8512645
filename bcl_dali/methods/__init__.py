"""The methods, by name: each one's settings, model, loss, gradient step and hooks (bcl_dali.methods.base).

May import bcl_dali.errors, device, distributed and models; nothing of configs, runs or training.
A method is added by writing its class and listing it here. Boosting (--boost k) is a setting of
every method; the paper's names are SimCLR and SDCLR boosted as it boosts them.
"""
from __future__ import annotations

from bcl_dali.methods.base import Autocast, BatchShare, Method, NoSettings
from bcl_dali.methods.bcl_d import BCLDMethod
from bcl_dali.methods.bcl_i import BCLIMethod
from bcl_dali.methods.byol import BYOLMethod
from bcl_dali.methods.moco import MoCoMethod
from bcl_dali.methods.sdclr import SDCLRMethod
from bcl_dali.methods.simclr import SimCLRMethod

METHODS: dict[str, type[Method]] = {method.name: method for method in (
    SimCLRMethod, BCLIMethod, SDCLRMethod, BCLDMethod, MoCoMethod, BYOLMethod)}
PAPER_NAMES = {("simclr", 1): "bcl-i", ("sdclr", 2): "bcl-d"}
"""Zhou et al. (ICML 2022): BCL-I is SimCLR with one boosted RandAugment op per view, BCL-D SDCLR with two."""


def method_label(method: str, boost: int, weight_norm: str = "paper") -> str:
    """What a run of `method` with `boost` boosted ops is called: the paper's name where it has one
    (simclr with --boost 1 is bcl-i, bcl-i with --boost 0 is simclr), else the base method, with
    "-boostK" when it is boosted (moco-boost1); "-rank" where the weights are ranks (bcl-i-rank)."""
    base = METHODS[method].base or method
    label = PAPER_NAMES.get((base, boost), base if boost == 0 else f"{base}-boost{boost}")
    return label if weight_norm == "paper" else f"{label}-{weight_norm}"


__all__ = ["METHODS", "PAPER_NAMES", "Autocast", "BatchShare", "Method", "NoSettings", "method_label"]
