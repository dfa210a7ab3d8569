"""The compression engines import and run in a Python that cannot import basicsr."""
import json
import subprocess
import sys

SCRIPT = '''
import json
import sys
sys.modules['basicsr'] = None  # every `import basicsr...` now raises ImportError
import torch
from torch import nn
import vsrcompress
from vsrcompress.pruning import parse_pruning_config
from vsrcompress.quantization import calibrate, export_int8_checkpoint, load_int8_checkpoint, quantize_network

parse_pruning_config({'ratio': 0.5})
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)).eval()
x = torch.rand(2, 3, 16, 16)
reference = net(x).detach()
report = quantize_network(net, {'skip_parts': []})
calibrate(net, [x], {'calibrator': 'max'})
fake_quant = net(x).detach()
export_int8_checkpoint(net, {'skip_parts': []}, report, sys.argv[1])
plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)).eval()
load_int8_checkpoint(plain, sys.argv[1])
loaded = [name for name, module in sys.modules.items() if module is not None and name.split('.')[0] == 'basicsr']
print(json.dumps({'quantized': report.quantized, 'error': float((fake_quant - reference).abs().max()),
                  'reloaded_equal': torch.equal(plain(x), fake_quant), 'basicsr_modules': loaded}))
'''


def test_pruning_and_quantization_engines_need_no_basicsr(tmp_path):
    result = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path / 'int8.pth')], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome['quantized'] == ['0', '2'] and 0 < outcome['error'] < 0.05
    assert outcome['reloaded_equal'] and outcome['basicsr_modules'] == []
