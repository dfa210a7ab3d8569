"""CPU tests for what only a GPU run would otherwise show: collectives on NCCL, calibrator devices, DataParallel,
TensorRT profiles and versions.

NCCL cannot be started without a GPU, so a backend that wraps gloo but is registered for CUDA tensors only stands in
for it: a CPU tensor handed to its collectives fails exactly as under NCCL.
"""
import pytest
import torch
import torch.distributed as dist
from pytorch_quantization import calib
from pytorch_quantization.nn import TensorQuantizer
from pytorch_quantization.tensor_quant import QuantDescriptor
from torch import nn

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.collectives import collective_device
from vsrcompress.export.tensorrt_build import TensorRTUnavailableError, check_tensorrt_version, profile_shapes
from vsrcompress.feature_distillation import recorded_outputs, refuse_data_parallel
from vsrcompress.models.recurrent_vsr_model import check_ranks_agree
from vsrcompress.quantization.distributed import sync_amax_across_ranks
from vsrcompress.quantization.histogram_amax import mse_amax, mse_errors

CUDA_ONLY = 'cudaonlygloo'
NCCL_CPU_ERROR = 'No backend type associated with device type cpu'


def _gloo_for_cuda_only(store, rank, world_size, timeout):
    return dist.ProcessGroupGloo(store, rank, world_size, timeout)


@pytest.fixture
def group(request):
    """A one-process default group with the backend named by the test's parameter."""
    backend = request.param
    if backend == CUDA_ONLY and CUDA_ONLY not in dist.Backend.backend_capability:
        dist.Backend.register_backend(CUDA_ONLY, _gloo_for_cuda_only, devices=['cuda'])
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield backend
    finally:
        dist.destroy_process_group()


def _quantizer(amax: float) -> nn.Module:
    return nn.Sequential(TensorQuantizer(QuantDescriptor(num_bits=8, amax=amax)))


@pytest.mark.parametrize('group', [CUDA_ONLY], indirect=True)
def test_collectives_never_hand_cpu_tensors_to_a_cuda_only_backend(group):
    with pytest.raises(RuntimeError, match=NCCL_CPU_ERROR):  # the stand-in behaves like NCCL
        dist.all_gather([torch.zeros(2)], torch.ones(2))
    assert collective_device().type == 'cuda'
    for collective in (lambda: check_ranks_agree(torch.ones(3), 'test values'),
                       lambda: sync_amax_across_ranks(_quantizer(2.0))):
        if torch.cuda.is_available():
            collective()
            continue
        with pytest.raises((RuntimeError, AssertionError)) as err:  # without a GPU the move to CUDA itself fails
            collective()
        assert NCCL_CPU_ERROR not in str(err.value)


@pytest.mark.parametrize('group', ['gloo'], indirect=True)
def test_collectives_run_on_cpu_under_gloo(group):
    assert collective_device() == torch.device('cpu')
    check_ranks_agree(torch.arange(4.0), 'test values')
    net = _quantizer(2.5)
    assert sync_amax_across_ranks(net) == 1
    assert float(net[0].amax) == 2.5


def test_mse_search_runs_on_the_histogram_device_with_library_edges_on_cpu():
    collector = calib.HistogramCalibrator(8, None, False, num_bins=512)
    collector.collect(torch.randn(20000, generator=torch.Generator().manual_seed(0)))
    hist, edges = collector._calib_hist, collector._calib_bin_edges
    assert edges.device.type == 'cpu'  # torch.linspace without a device: CPU even when the input is on CUDA
    # the meta device stands in for CUDA: a histogram there and edges on CPU is the placement of a CUDA calibration
    centers, errors = mse_errors(hist.to('meta'), edges, 8)
    assert centers.device.type == errors.device.type == 'meta' and errors.shape == (len(centers) - 128,)
    centers, errors = mse_errors(hist, edges, 8)
    assert float(mse_amax(hist, edges, 8)) == float(centers[128 + int(errors.argmin())])


def test_feature_distillation_refuses_data_parallel_and_names_torchrun():
    net = BasicVSRNet(num_feat=8, num_block=1)
    refuse_data_parallel(net)
    with pytest.raises(ValueError, match=r'train.feature_distill_opt does not work with torch.nn.DataParallel.*'
                                         r'torchrun --nproc_per_node'):
        refuse_data_parallel(nn.DataParallel(net))
    with recorded_outputs(net, ['forward_trunk']) as feats, torch.no_grad():
        net(torch.rand(1, 2, 3, 64, 64))
    assert len(feats['forward_trunk']) == 2  # the bare net records one state per frame


def test_tensorrt_profile_is_scale_aware_and_tunes_for_an_opt_size():
    assert profile_shapes(5, 4) == ((1, 5, 3, 33, 33), (1, 5, 3, 540, 960), (1, 5, 3, 540, 960))
    assert profile_shapes(3, 2)[2] == (1, 3, 3, 1080, 1920)  # x2: 1080p in, 4K out
    assert profile_shapes(5, 4, 720, 1280, 540, 960)[1:] == ((1, 5, 3, 540, 960), (1, 5, 3, 720, 1280))
    with pytest.raises(ValueError, match='opt_height/opt_width: must lie between 33x33 and the maximum 540x960'):
        profile_shapes(5, 4, opt_height=720, opt_width=1280)
    with pytest.raises(ValueError, match='max_height/max_width: must be >= 33'):
        profile_shapes(5, 4, 32, 64)


def test_tensorrt_older_than_10_is_refused_with_the_supported_version():
    for version in ('10.0.1', '10.13.3.9'):
        check_tensorrt_version(version)
    with pytest.raises(TensorRTUnavailableError, match=r'TensorRT 8.6.1 is not supported: .*TensorRT 10.x'):
        check_tensorrt_version('8.6.1')
    with pytest.raises(ValueError, match="TensorRT version 'dev' is not understood"):
        check_tensorrt_version('dev')


def test_cpu_backends_leave_torch_cuda_alone(monkeypatch):
    from vsrcompress.inference.backends import make_backend

    def no_cuda(*_args, **_kwargs):
        raise AssertionError('a CPU run touched torch.cuda')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # as on a GPU machine running a CPU backend
    monkeypatch.setattr(torch.cuda, 'max_memory_allocated', no_cuda)
    backend = make_backend('torch', 'cpu', net=BasicVSRNet(num_feat=8, num_block=1))
    assert not backend.uses_torch_cuda() and backend.gpu_peak_mib() is None
