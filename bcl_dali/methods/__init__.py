"""The paper's methods by name: every module of this package that defines a `Method` with a name."""
from __future__ import annotations

import importlib
import pkgutil

from bcl_dali.methods.base import Contrast, Method

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

METHODS: dict[str, Method] = {method.name: method() for method in sorted(Method.registered, key=lambda m: m.name)}

__all__ = ["METHODS", "Contrast", "Method"]
