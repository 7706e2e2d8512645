"""The methods, by name: each one's settings, model, loss, gradient step and hooks (bcl_dali.methods.base).

May import bcl_dali.errors, device, distributed and models; nothing of configs, runs or training.
A method is added by writing its class and listing it here.
"""
from __future__ import annotations

from bcl_dali.methods.base import Autocast, BatchShare, Method, NoSettings
from bcl_dali.methods.bcl_d import BCLDMethod
from bcl_dali.methods.bcl_i import BCLIMethod
from bcl_dali.methods.sdclr import SDCLRMethod
from bcl_dali.methods.simclr import SimCLRMethod

METHODS: dict[str, type[Method]] = {method.name: method for method in (SimCLRMethod, BCLIMethod, SDCLRMethod, BCLDMethod)}

__all__ = ["METHODS", "Autocast", "BatchShare", "Method", "NoSettings"]
