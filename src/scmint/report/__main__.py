"""``python -m scmint.report``: the same as ``scmint-report``."""

import sys

from scmint.report.cli import main

sys.exit(main())
