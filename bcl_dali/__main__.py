"""`python -m bcl_dali ARGS` is `bcl-dali ARGS`: how the package launches itself (e.g. under torchrun)
wherever it is installed."""
from bcl_dali.command import main

main("python -m bcl_dali")
