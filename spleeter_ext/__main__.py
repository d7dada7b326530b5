"""``python -m spleeter_ext``: the same command line as ``spleeter-ext``."""
from .cli import main

main()
