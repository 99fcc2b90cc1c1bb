"""`python -m lookalike.api`: the API in the foreground, settings from LOOKALIKE_* (the API image's command)."""

import logging
import sys

from lookalike.api.serve import run
from lookalike.settings import Settings

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
sys.exit(run(Settings.from_env()))
