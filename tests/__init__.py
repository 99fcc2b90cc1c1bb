"""The test suite. Run state (LOOKALIKE_HOME: embedded indexes, thumbnails, features) goes to a
temporary folder of the session's, never the checkout's run/, unless the caller set one."""

import os
import tempfile

os.environ.setdefault("LOOKALIKE_HOME", tempfile.mkdtemp(prefix="lookalike-test-home-"))
