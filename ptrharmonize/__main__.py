"""`python -m ptrharmonize` is `ptrh`."""

from .cli import main

main()
