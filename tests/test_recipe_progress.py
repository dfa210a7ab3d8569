"""The recipe's short console view, on BasicSR's real log line format (no training needed)."""
from vsrcompress.recipe.progress import StageProgress

LINE = ('2026-12-03 07:08:00,777 INFO: [tiny_..][epoch:  0, iter:     {it:,}, lr:(9.055e-04,)] [eta: {eta}, time '
        '(data): 0.500 (0.067)] l_pix: 8.0847e-02')


def views(*lines: str) -> list[str]:
    shown = []
    progress = StageProgress('prune', 2, 3, 1000, 600, emit=lambda text, flush=False: shown.append(text))
    for line in lines:
        progress(line)
    return shown


def test_iterations_show_the_stage_and_whole_recipe_eta():
    assert views(LINE.format(it=400, eta='0:05:00')) == [
        'recipe: [2/3] prune: iter 400/1000, stage ETA 0:05:00, recipe training ETA about 0:10:00']
    assert views(LINE.format(it=1000, eta='-1 day, 23:59:59')) == [  # BasicSR's ETA at the last iteration
        'recipe: [2/3] prune: iter 1000/1000, stage ETA 0:00:00, recipe training ETA about 0:05:00']
    assert views(LINE.format(it=1, eta='2 days, 1:00:00'))[0].endswith('stage ETA 2 days, 1:00:00, recipe '
                                                                        'training ETA about 2 days, 1:05:00')


def test_validation_is_shown_and_everything_else_is_not():
    assert views('Network: BasicVSRNet, with parameters: 64,243', 'BasicVSRNet(', '  name: demo',
                 '\t # psnr: 27.1234\tBest: 27.1234 @ 100 iter') == ['recipe: [2/3] prune: validation psnr 27.1234']
