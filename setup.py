"""vsrcompress: pruning and INT8 QAT for BasicVSR/IconVSR, as a BasicSR extension.

Install torch first, then this package without build isolation (basicsr's sdist imports torch at build
time and would otherwise pull a second torch into a temporary environment); scripts/install.sh does both.
"""
from setuptools import find_packages, setup

setup(
    name='vsrcompress',
    version='0.1.0',
    description='Structured pruning and INT8 quantization-aware training for BasicVSR and IconVSR (BasicSR extension)',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['vsrcompress', 'vsrcompress.*']),
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'basicsr==1.4.2',
        'torch-pruning==1.6.1',
        'pytorch-quantization==2.1.3',
        'tensorboard',
        'pyyaml',
        'lmdb',
        'onnx',
        'onnxruntime',
        'openvino',
        'opencv-python-headless',
        'scikit-image',
        'matplotlib',
        'tqdm',
    ],
    extras_require={'test': ['pytest>=7', 'pytest-timeout']},
)
