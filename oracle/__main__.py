"""``python -m oracle``: the command-line tool (see oracle.cli)."""

import sys

from oracle.cli import main

sys.exit(main())
