"""BCL-D (Zhou et al., ICML 2022): SDCLR plus two boosted RandAugment ops per view."""
from __future__ import annotations

from bcl_dali.methods.sdclr import SDCLRMethod


class BCLDMethod(SDCLRMethod):
    name = "bcl-d"
    base = "sdclr"
    boost = 2
    summary = "SDCLR + boosted RandAugment, k = 2"
