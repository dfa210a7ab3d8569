"""GPU acceptance run (offline install, cuda tests, full-size BasicVSR timing); see docs/gpu.md."""
import sys

import vsrcompress  # noqa: F401  (before anything from basicsr)
from vsrcompress.bench.gpu_acceptance import main

if __name__ == '__main__':
    sys.exit(main())
