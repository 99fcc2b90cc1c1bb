"""`python -m lookalike` is the `lookalike` command."""

import sys

from lookalike.cli.main import main

sys.exit(main())
