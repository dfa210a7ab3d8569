"""GPU acceptance run (offline install, cuda tests, full-size BasicVSR timing); see docs/gpu.md."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clean checkout

import vsrcompress  # noqa: E402,F401  (before anything from basicsr)
from vsrcompress.bench.gpu_acceptance import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
