"""``python -m gnnjets.pretrained release CKPT --name NAME`` and ``python -m gnnjets.pretrained list``."""

import sys

from gnnjets.pretrained import main

sys.exit(main())
