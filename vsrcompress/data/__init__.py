"""Imports every `*_dataset.py` here so that its classes register with basicsr's registry."""
import importlib
from pathlib import Path

for _file in sorted(Path(__file__).parent.glob('*_dataset.py')):
    importlib.import_module(f'{__name__}.{_file.stem}')
