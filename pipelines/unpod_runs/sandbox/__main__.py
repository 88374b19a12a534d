"""`python -m unpod_runs.sandbox`: the same command as `unpod-runs sandbox`, without the main CLI."""

import sys

from unpod_runs.sandbox.cli import serve

sys.exit(serve())
