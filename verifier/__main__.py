"""``python -m verifier BUNDLE --trust FILE``: offline bundle verification (see verifier.cli)."""

import sys

from verifier.cli import main

sys.exit(main())
