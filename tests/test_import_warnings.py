"""Importing vsrcompress (what every CLI does first) must not print third-party deprecation warnings."""
import subprocess
import sys


def test_import_raises_no_future_warning() -> None:
    """pytorch-quantization's import-time ``torch.jit.script`` FutureWarning is hidden; a FutureWarning fails here."""
    code = 'import vsrcompress, vsrcompress.quantization, vsrcompress.pruning'
    proc = subprocess.run([sys.executable, '-W', 'error::FutureWarning', '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
