"""``python -m seqlit`` is the ``seqlit`` command."""

from seqlit.cli import main

main()
