"""``python -m oracle``: the command-line tool (see oracle.harness.cli)."""
import sys

from oracle.harness.cli import main

sys.exit(main())
