"""Model complexity report: MACs and params against torch-pruning's counter, the script on tiny dense, pruned and INT8
checkpoints (JSON, Markdown and PNG that parse), peak memory from a child process, bad input. Tiny networks, CPU."""
import json
import os

import cv2
import pytest
import torch
from torch import nn
from torch_pruning.utils import count_ops_and_params
from conftest import script_main

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.quantization import calibrate, export_int8_checkpoint, quantize_network
from vsrcompress.quantization.output_ranges import OUTPUT_RANGE_KEY, calibrate_output_ranges
from vsrcompress.report import ModelEntry, count_model_complexity, measure_complexity, model_entry

FRAMES, SIZE = 2, 64
ARCH = {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, 'scale': 4}
SMALL = {'spynet': [[8, 8, 8, 8]] * 6, 'upsample': [8, 8], 'hr': 8}  # the default tail is 64 wide
PRUNED = {'backward': 8, 'backward_blocks': [4], 'forward': 6, 'forward_blocks': [3], 'fusion': 8,
          **SMALL, 'upsample': [8, 4], 'hr': 4}

pytestmark = pytest.mark.usefixtures('one_thread')


def tiny_net(widths: dict) -> BasicVSRNet:
    torch.manual_seed(0)
    return BasicVSRNet(**{k: v for k, v in ARCH.items() if k != 'type'}, widths=widths).eval()


def counter_per_frame(net: nn.Module, width: int, height: int) -> tuple[float, int]:
    """MACs per frame and params by torch-pruning's counter on real tensors: count(n + 1 frames) - count(n)."""
    with torch.no_grad():
        short, params = count_ops_and_params(net, torch.rand(1, FRAMES, 3, height, width))
        long, _ = count_ops_and_params(net, torch.rand(1, FRAMES + 1, 3, height, width))
    return long - short, params


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """Tiny dense, pruned, INT8 (with and without conv output ranges) and official-layout checkpoint files."""
    folder = tmp_path_factory.mktemp('ckpts')
    paths = {name: str(folder / f'{name}.pth') for name in ('dense', 'pruned', 'int8', 'int8_noranges', 'official')}
    save_atomic(network_checkpoint(tiny_net(SMALL), ARCH), paths['dense'])
    save_atomic({'params': tiny_net(SMALL).state_dict()}, paths['official'])  # BasicSR's layout: no arch
    save_atomic(network_checkpoint(tiny_net(PRUNED), ARCH), paths['pruned'])
    net = tiny_net(SMALL)
    report = quantize_network(net, {})
    clips = [torch.rand(1, FRAMES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    calibrate(net, clips, {})
    export_int8_checkpoint(net, {}, report, paths['int8'],
                           extra={'arch': ARCH, OUTPUT_RANGE_KEY: calibrate_output_ranges(net, clips, {})})
    export_int8_checkpoint(net, {}, report, paths['int8_noranges'], extra={'arch': ARCH})
    return paths


def run_script(argv: list[str]) -> int:
    return script_main('model_complexity')(argv)


@pytest.mark.parametrize('widths', [SMALL, PRUNED], ids=['dense', 'pruned'])
def test_macs_and_params_equal_torch_pruning_counter(widths):
    net = tiny_net(widths)
    width, height = 96, 64
    macs, params = counter_per_frame(net, width, height)
    counted = count_model_complexity(net, width, height)
    assert counted['params'] == params == sum(p.numel() for p in net.parameters())
    assert counted['macs_per_frame'] == pytest.approx(macs, rel=1e-9)


def test_official_configurations_are_full_size():
    basicvsr = model_entry('basicvsr').net
    assert sum(p.numel() for p in basicvsr.parameters()) == pytest.approx(6.29e6, rel=2e-3)  # published size
    assert len(basicvsr.backward_trunk.main[2]) == 30 and basicvsr.backward_trunk.num_feat == 64
    iconvsr = model_entry('iconvsr').net
    assert isinstance(iconvsr, IconVSRNet) and len(iconvsr.forward_trunk.main[2]) == 30
    assert sum(p.numel() for p in iconvsr.parameters()) == pytest.approx(8.70e6, rel=2e-3)


def test_script_writes_json_markdown_and_png(checkpoints, tmp_path):
    prefix = str(tmp_path / 'out' / 'complexity')
    models = [checkpoints[k] for k in ('dense', 'pruned', 'int8', 'int8_noranges', 'official')]
    official_widths = 'widths={spynet: [' + ', '.join(['[8, 8, 8, 8]'] * 6) + '], upsample: [8, 8], hr: 8}'
    width, height = 96, SIZE
    assert run_script(['--models', *models, '--input-size', str(width), str(height), '--frames', str(FRAMES),
                       '--repeats', '2', '--threads', '1', '--no-memory', '--output', prefix,
                       '--arch', 'BasicVSRNet', '--arch-opt', 'num_feat=8', '--arch-opt', 'num_block=1',
                       '--arch-opt', official_widths,
                       '--psnr', f"{checkpoints['dense']}=30.5", '--psnr', f"{checkpoints['int8']}=30.25"]) == 0

    with open(prefix + '.json') as f:
        rows = {row['name']: row for row in json.load(f)['models']}
    assert list(rows) == models
    dense, pruned, int8, noranges = (rows[checkpoints[k]] for k in ('dense', 'pruned', 'int8', 'int8_noranges'))
    for name, widths in ((dense['name'], SMALL), (pruned['name'], PRUNED)):
        macs, params = counter_per_frame(tiny_net(widths), width, height)
        assert rows[name]['macs_per_frame'] == pytest.approx(macs, rel=1e-9) and rows[name]['params'] == params
    assert pruned['macs_per_frame'] < dense['macs_per_frame']
    assert int8['macs_per_frame'] == noranges['macs_per_frame'] == dense['macs_per_frame']
    official = rows[checkpoints['official']]
    assert (official['macs_per_frame'], official['params']) == (dense['macs_per_frame'], dense['params'])
    for row in rows.values():
        assert row['checkpoint_bytes'] == os.path.getsize(row['name'])
    assert int8['checkpoint_bytes'] < dense['checkpoint_bytes']

    for row in (dense, pruned, official):
        assert row['onnx_precision'] == 'fp32' and not row['int8']
        assert row['latency_ms_per_frame']['onnxruntime-cpu'] > 0 and row['latency_ms_per_frame']['torch-cpu'] > 0
        assert len(row['window_seconds']['onnxruntime-cpu']) == 2
    assert int8['int8'] and int8['onnx_precision'] == 'int8-ort' and int8['latency_ms_per_frame']['onnxruntime-cpu'] > 0
    assert int8['latency_ms_per_frame']['torch-cpu'] is None
    assert 'fake quantization' in int8['latency_notes']['torch-cpu']
    assert noranges['latency_ms_per_frame']['onnxruntime-cpu'] is None and noranges['onnx_precision'] is None
    assert 'conv_output_range' in noranges['latency_notes']['onnxruntime-cpu']
    if torch.cuda.is_available():
        assert dense['latency_ms_per_frame']['torch-cuda'] > 0
    else:
        assert dense['latency_ms_per_frame']['torch-cuda'] is None
        assert 'CUDA is not available' in dense['latency_notes']['torch-cuda']
    assert (dense['psnr_db'], int8['psnr_db'], pruned['psnr_db']) == (30.5, 30.25, None)
    assert (dense['setup']['width'], dense['setup']['height'], dense['setup']['frames']) == (width, height, FRAMES)

    with open(prefix + '.md') as f:
        markdown = f.read()
    table = [line for line in markdown.splitlines() if line.startswith('| `')]
    assert [line.split('|')[1].strip(' `') for line in table] == models
    assert 'conv_output_range' in markdown and 'PSNR (dB)' in markdown
    image = cv2.imread(prefix + '.png')
    assert image is not None and image.shape[0] > 0 and image.shape[1] > 0
    assert not [name for name in os.listdir(tmp_path / 'out') if name.startswith('.tmp_')]


def test_peak_memory_of_one_forward_in_a_child_process():
    net = tiny_net(SMALL)
    width, height = 96, SIZE
    [row] = measure_complexity([ModelEntry('tiny', net=net)], width, height, frames=FRAMES, repeats=1, warmup=0,
                               threads=1, backends=['onnxruntime-cpu', 'torch-cpu'], dynamic_graph=True, log=None)
    output_mib = FRAMES * 3 * 16 * width * height * 4 / 2 ** 20  # the float SR output alone
    assert row['latency_ms_per_frame']['onnxruntime-cpu'] > 0 and row['setup']['dynamic_graph']
    for backend in ('onnxruntime-cpu', 'torch-cpu'):
        assert output_mib <= row['peak_memory_mib'][backend] < 2048, (backend, row)
    assert row['memory_notes'] == {} and row['checkpoint_bytes'] is None and row['source'] == 'in memory'


def test_bad_model_name_and_input_size(checkpoints, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_script(['--models', 'basicvsr', 'no_such_model', '--output', str(tmp_path / 'x')])
    assert 'no_such_model' in str(exc.value) and "['basicvsr', 'iconvsr']" in str(exc.value)
    with pytest.raises(SystemExit):
        run_script(['--models', checkpoints['dense'], '--input-size', '32', '64'])
    assert '--input-size' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script(['--models', checkpoints['dense'], '--psnr', 'other.pth=30'])
    assert '--psnr' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'x.json')

    tiny = ModelEntry('tiny', net=tiny_net(SMALL))
    with pytest.raises(ValueError, match='width must be an integer >= 33'):
        measure_complexity([tiny], 32, SIZE, log=None)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        measure_complexity([ModelEntry('gone', checkpoint=str(tmp_path / 'missing.pth'))], SIZE, SIZE, log=None)
    torch.manual_seed(0)
    icon = ModelEntry('icon', net=IconVSRNet(num_feat=8, num_block=1))
    with pytest.raises(ValueError, match="'icon' .*at least 5 frames, got 3"):
        measure_complexity([tiny, icon], SIZE, SIZE, frames=3, log=None)
