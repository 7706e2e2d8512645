"""The installed distribution's version, or "0+unknown" in a checkout that was never installed."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bcl-dali")
except PackageNotFoundError:
    __version__ = "0+unknown"
