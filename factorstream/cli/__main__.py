"""``python -m factorstream.cli`` is the ``factorstream`` command."""

from factorstream.cli import main

main()
