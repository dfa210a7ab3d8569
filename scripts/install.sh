#!/usr/bin/env bash
# Installs vsrcompress and everything it needs on a fresh Python 3.11 machine.
# torch goes first so that basicsr's sdist (which imports torch in setup.py) builds against it
# without build isolation, instead of downloading a second torch into a temporary build env.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip"
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
if ! python -c "import torch, torchvision" 2>/dev/null; then
  $PIP install $TORCH_SPEC
fi
$PIP install --no-build-isolation "basicsr==1.4.2"
# After basicsr: its opencv-python and tb-nightly write the same module folders as our opencv-python-headless (no
# libGL needed, as on servers) and tensorboard, so ours, installed last, are the ones in use (tests/test_install.py).
$PIP install --no-build-isolation -e ".[test]"
python -c "import vsrcompress; print('vsrcompress', vsrcompress.__version__, 'is installed')"
python -c "from vsrcompress.gpu_check import unusable_gpu_warning as w; m = w(); m and print(m)" >&2
