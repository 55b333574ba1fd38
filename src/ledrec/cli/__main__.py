"""``python -m ledrec.cli …``: the same as the ``ledrec`` command."""

import sys

from ledrec.cli import main

if __name__ == "__main__":
    sys.exit(main())
