"""Reports that compare models: size, MACs, latency and memory per model (``complexity``), written as a Markdown
table, JSON and a chart (``complexity_table``). Used by scripts/model_complexity.py and the recipe's report stage.
"""
from vsrcompress.report.complexity import (LATENCY_BACKENDS, OFFICIAL_MODELS, ModelEntry, count_model_complexity,
                                           measure_complexity, model_entry, official_network)
from vsrcompress.report.complexity_table import complexity_markdown, plot_complexity, write_complexity_report

__all__ = [
    'LATENCY_BACKENDS', 'OFFICIAL_MODELS', 'ModelEntry', 'complexity_markdown', 'count_model_complexity',
    'measure_complexity', 'model_entry', 'official_network', 'plot_complexity', 'write_complexity_report',
]
