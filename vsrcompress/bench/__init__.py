"""The benchmark library: what every benchmark script shares (machine facts, interleaved timing, outputs).

A benchmark records the machine it ran on (CPU model and the instruction-set flags that decide engine speed, load
average before and after) and times the things it compares round-robin in one run, so that a noisy machine
disturbs them alike. Peak memory is measured in a fresh child process (``peak_memory``). Each benchmark is one module
(``cpu_backends``, ``deploy``, ``pruning_speed``, ``data_throughput``, ``qat``, ``pruning_quality``,
``quantization_sensitivity``, ``gpu_acceptance``) with ``run(config) -> dict``,
``markdown(result)`` and ``plot(result, path)``; its script calls ``script.run_benchmark``. The shared helpers
(``machine``, ``timing``, ``clips``, ``inputs``, ``peak_memory``, ``script``) are plain Python/PyTorch (basicsr only
for the quality benchmarks' loss, when they measure).
"""
