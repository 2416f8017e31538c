"""``python -m imm_cli``: the same as the ``imm`` console script."""

import sys

from imm_cli.main import main

sys.exit(main())
