"""The command line from a checkout: `python cli.py ARGS` is what an install calls `bcl-dali ARGS`
(bcl_dali.command)."""
from bcl_dali.command import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main("cli.py")
