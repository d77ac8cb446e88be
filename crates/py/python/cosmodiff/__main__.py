"""``python -m cosmodiff ARGS``: the ``cosmodiff`` command line, the same
parser and workflows as the binary (``python -m cosmodiff demo --quick``)."""
import sys

from . import _core

if __name__ == "__main__":
    sys.exit(_core.cli_main(["cosmodiff", *sys.argv[1:]]))
