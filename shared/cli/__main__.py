"""`python -m shared.cli`: the same as the `vbg` script."""

import sys

from shared.cli.main import main

sys.exit(main())
