"""BCL-I (Zhou et al., ICML 2022): SimCLR plus one boosted RandAugment op per view."""
from __future__ import annotations

from bcl_dali.methods.simclr import SimCLRMethod


class BCLIMethod(SimCLRMethod):
    name = "bcl-i"
    base = "simclr"
    boost = 1
    summary = "SimCLR + boosted RandAugment, k = 1"
