"""``python -m sbc.cli``: the ``sbc`` command."""

from sbc.cli import console

console()
