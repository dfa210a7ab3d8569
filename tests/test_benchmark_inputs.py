"""The quality benchmarks' shared inputs (vsrcompress/bench/inputs.py): a missing demo teacher or footage is refused
before any work, with the command that makes it, the same way in each of the three scripts."""
import os

import pytest
from conftest import script_main

SCRIPTS = ['benchmark_qat', 'benchmark_pruning_quality', 'quantization_sensitivity']


@pytest.mark.parametrize('script', SCRIPTS)
def test_missing_inputs_say_how_to_make_them(script, tiny_footage, narrow_checkpoint, tmp_path, capsys, monkeypatch):
    main = script_main(script)
    monkeypatch.chdir(tmp_path)  # the default (relative) demo-teacher path must not exist, whatever was run before
    out = tmp_path / 'out'
    with pytest.raises(SystemExit):
        main(['--footage', tiny_footage, '--out', str(out)])  # the default checkpoint: not made here
    err = capsys.readouterr().err
    assert 'demo_basicvsr_prune_qat_teacher' in err and 'does not exist' in err
    assert 'compress.py -opt options/demo/basicvsr_prune_qat_demo.yml' in err
    with pytest.raises(SystemExit):
        main(['--checkpoint', narrow_checkpoint, '--footage', str(tmp_path / 'none'), '--out', str(out)])
    err = capsys.readouterr().err
    assert 'has no train split' in err and 'make_demo_footage.py' in err
    assert os.listdir(tmp_path) == []
