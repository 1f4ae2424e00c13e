"""`python -m steplr_tui` runs the same command as `steplr-tui`."""

import sys

from steplr_tui.cli import main

sys.exit(main())
