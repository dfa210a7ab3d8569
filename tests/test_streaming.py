"""The streaming step: a stream that carries the forward state equals the whole-sequence network where it should
(lookahead to the end of the clip; the forward branch always), for both archs, dense, pruned and fake-quantized;
IconVSR's keyframes follow the stream's schedule. Tiny networks, CPU."""
import pytest
import torch

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.quantization import calibrate, quantize_network
from vsrcompress.streaming import StreamState, plan_keyframes, stream_step

SIZE = 64
NARROW = {'spynet': [[8, 8, 8, 8]] * 6, 'upsample': [8], 'hr': 8}

pytestmark = pytest.mark.usefixtures('one_thread')


def make_net(arch: str, **widths) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == 'basicvsr':
        return BasicVSRNet(num_feat=8, num_block=1, scale=2, widths={**NARROW, **widths}).eval()
    return IconVSRNet(num_feat=8, num_block=1, scale=2, keyframe_stride=3, widths={**NARROW, **widths}).eval()


def clip(frames: int, seed: int = 1, height: int = SIZE, width: int = SIZE) -> torch.Tensor:
    return torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


def stream(net, x: torch.Tensor, interval: int, lookahead: int, features: bool = False):
    """Run ``x`` through consecutive calls; the SR frames (and forward features) in order."""
    n, state, outputs, feats, start = x.shape[1], None, [], [], 0
    while start < n:
        stop = min(n, start + interval + lookahead)
        out = stream_step(net, x[:, start:stop], min(interval, stop - start), state, ended=stop == n,
                          return_features=features)
        outputs.append(out.sr)
        feats += out.forward_features or []
        state, start = out.state, start + out.sr.shape[1]
    return torch.cat(outputs, dim=1), feats


@pytest.mark.parametrize('arch', ['basicvsr', 'iconvsr'])
@pytest.mark.parametrize('frames', [5, 8])
def test_stream_with_lookahead_to_the_end_equals_the_whole_sequence(arch, frames):
    net = make_net(arch)
    x = clip(frames)
    with torch.no_grad():
        whole = net(x)
        for interval in (1, 2, 3, 5):
            streamed, _ = stream(net, x, interval, lookahead=frames)
            assert streamed.shape == whole.shape
            assert (streamed - whole).abs().max() <= 1e-5, (interval, frames)
        short, _ = stream(net, x, 2, lookahead=1)  # a short lookahead is an approximation, not the same network
        assert (short - whole).abs().max() > 1e-5


@pytest.mark.parametrize('interval, lookahead', [(1, 0), (2, 1), (3, 2), (4, 0)])
def test_forward_features_equal_the_whole_sequence_for_any_interval(interval, lookahead):
    net = make_net('basicvsr')
    x = clip(9)
    with torch.no_grad():
        whole = stream_step(net, x, 9, ended=True, return_features=True).forward_features
        _, streamed = stream(net, x, interval, lookahead, features=True)
    assert len(streamed) == len(whole) == 9
    assert max(float((a - b).abs().max()) for a, b in zip(streamed, whole)) <= 1e-5


@pytest.mark.parametrize('arch', ['basicvsr', 'iconvsr'])
def test_a_zero_state_at_the_start_equals_no_state(arch):
    net = make_net(arch)
    x = clip(5, height=66, width=70)  # IconVSR pads to multiples of 4: the state follows the padded size
    with torch.no_grad():
        fresh = stream_step(net, x, 3)
        zero = stream_step(net, x, 3, StreamState.zeros(net, 1, 66, 70))
    assert torch.equal(fresh.sr, zero.sr)
    assert torch.equal(fresh.state.feat_forward, zero.state.feat_forward) and zero.state.frame_index == 3
    assert tuple(zero.state.past_lq.shape) == ((1, 1, 3, 66, 70) if arch == 'basicvsr' else (1, 4, 3, 68, 72))


@pytest.mark.parametrize('arch', ['basicvsr', 'iconvsr'])
def test_pruned_and_fake_quantized_networks_stream_exactly(arch):
    pruned = make_net(arch, forward=6, backward=4, forward_blocks=[5], backward_blocks=[3])
    assert pruned.width_spec()['forward'] == 6
    quantized = make_net(arch)
    quantize_network(quantized, {})
    calibrate(quantized, [clip(5, seed=2)], {'calibrator': 'max'})
    x = clip(7)
    for net in (pruned, quantized):
        with torch.no_grad():
            whole = net(x)
            streamed, _ = stream(net, x, 2, lookahead=7)
        assert (streamed - whole).abs().max() <= 1e-5


def test_iconvsr_keyframes_follow_the_stream_schedule():
    # frames 3..7 of a stream with stride 5: frame 5 is the keyframe, whatever the call's own positions
    plan = plan_keyframes(first=3, frames=5, real_frames=5, ended=False, stride=5, padding=2, past=4, past_valid=3)
    assert plan.slots == (-1, -1, 0, -1, -1)
    assert plan.neighbours == ((4, 5, 6, 7, 8),)  # frames 3..7 in the buffer [4 carried frames, the call's 5]
    # the start of a stream mirrors as basicsr does (frames 4, 3 before frame 0), and the stream's last frame is a
    # keyframe once it has ended, mirrored after the end (frames n-4, n-5)
    start = plan_keyframes(first=0, frames=6, real_frames=6, ended=True, stride=5, padding=2, past=4, past_valid=0)
    assert start.slots == (0, -1, -1, -1, -1, 1)
    assert start.neighbours == ((8, 7, 4, 5, 6), (7, 8, 9, 6, 5))  # frame 5: 3, 4, 5, then 2, 1
    # while the stream goes on, frames after the call are replaced by its last one; a graph's spare slots repeat
    live = plan_keyframes(first=5, frames=3, real_frames=3, ended=False, stride=5, padding=2, past=4, past_valid=4,
                          max_slots=2)
    assert live.slots == (0, -1, -1) and live.neighbours == ((2, 3, 4, 5, 6), (2, 3, 4, 5, 6))


def test_stream_step_refuses_bad_calls():
    net = make_net('basicvsr')
    x = clip(3)
    with pytest.raises(ValueError, match='keep: must be an integer from 1 to the 3 frames'):
        stream_step(net, x, 4)
    state = stream_step(net, x, 2).state
    with pytest.raises(ValueError, match='state: carried for frames of .*start a new stream'):
        stream_step(net, clip(3, height=72), 2, state)
