"""A short console view of a recipe's training stages; the full logs stay in the experiment folders.

BasicSR prints a network dump, the options and every logged iteration; over a recipe's stages that is more than a
thousand lines. The recipe keeps each stage's whole console in ``experiments/<recipe>/logs/<stage>.console.log`` and
prints only: which stage of how many, its iterations with BasicSR's ETA for the stage, an estimate for the rest of
the recipe's training, and validation results.
"""
import datetime
import re

_ITER = re.compile(r'iter:\s*([\d,]+).*?\[eta: (.+?), time \(data\): ([\d.]+)')
_METRIC = re.compile(r'#\s*(\w+):\s*([-\d.]+)')


class StageProgress:
    """Turns one stage's console lines into short progress lines (call it with each line).

    Args:
        stage: Stage name (``teacher``, ``prune``, ``qat``).
        position: 1-based number of this stage among the recipe's training stages.
        count: Number of training stages in the recipe.
        total_iter: This stage's iterations.
        later_iters: Iterations of the training stages after this one (for the whole-recipe estimate, at this
            stage's speed per iteration).
        emit: Where the short lines go (``print`` by default).
    """

    def __init__(self, stage: str, position: int, count: int, total_iter: int, later_iters: int, emit=print):
        self.prefix = f'recipe: [{position}/{count}] {stage}'
        self.total_iter = total_iter
        self.later_iters = later_iters
        self.emit = emit
        self._validations = set()  # shown since the last iteration line: BasicSR validates the last one twice

    def __call__(self, line: str) -> None:
        match = _ITER.search(line)
        if match:
            current = int(match.group(1).replace(',', ''))
            stage_left = max(0.0, _seconds(match.group(2)))  # BasicSR's last iteration says "-1 day, 23:59:58"
            rest = stage_left + self.later_iters * float(match.group(3))
            self.emit(f'{self.prefix}: iter {current}/{self.total_iter}, stage ETA {_clock(stage_left)}, recipe '
                      f'training ETA about {_clock(rest)}', flush=True)
            self._validations.clear()
            return
        metrics = _METRIC.findall(line)
        text = f'{self.prefix}: validation ' + ', '.join(f'{k} {v}' for k, v in metrics)
        if metrics and text not in self._validations:  # train_pipeline validates again after the loop, same iteration
            self._validations.add(text)
            self.emit(text, flush=True)


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


def _seconds(eta: str) -> float:
    """BasicSR's ETA (``str`` of a ``timedelta``: ``'0:01:02'``, ``'2 days, 0:01:02'``, ``'-1 day, 23:59:58'``) in
    seconds."""
    days = 0
    if 'day' in eta:
        head, eta = eta.split(',', 1)
        days = int(head.split()[0])
    parts = [float(p) for p in eta.strip().split(':')]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
