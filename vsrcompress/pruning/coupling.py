"""Which channels of a BasicVSRNet/IconVSRNet must be removed together, written down from the architecture.

torch-pruning's DependencyGraph finds coupled channels by tracing, and on these recurrent networks the trace
goes wrong in ways that are silent or late: PixelShuffle is taken for an element-wise op (IndexError in
MetaPruner), the hidden-state group disappears when SpyNet requires grad (``grid_sample`` couples the hidden
channels to the flow), and one conv is called once per frame with its own output fed back into an input slice.
The architecture is ours and fixed, so the coupling is stated here once, by module name, and proved
channel by channel by the dead-channel tests (tests/test_pruning.py). torch-pruning still does the layer
surgery, the importance criteria and the counting.

Each group is named after the width-spec entry it sets (``net.width_spec()``): ``backward``, ``forward``,
``backward_blocks.3``, ``fusion``, ``upsample.0``, ``hr``, ``spynet.2.1`` (level 2, inner width 1). A group's
unit is one channel of that width; for ``upsample.k`` a unit is one channel after PixelShuffle, i.e. r*r
consecutive output channels of the upconv.

IconVSR's EDVR feature extractor has one width (``widths['edvr']``) but many independent channel spaces: the
pyramid features, the offset features of each PCD level, the aligned features, the TSA attention maps. Each is
a group ``edvr.<space>``; they are pruned together to one kept width (part ``edvr``) so that the result is again
an EDVR of a single width. A modulated deformable conv splits its input channels into 8 contiguous deformable
groups, each sampled at its own offsets: the spaces it reads (``edvr.l1``, ``edvr.l2``, ``edvr.l3``,
``edvr.feat.l1``) lose the same number of channels in each of the 8 segments (``segments``), so every kept
channel stays in its deformable group. Its offset/mask conv output (3 x 8 x 9 channels) is never pruned.
"""
from dataclasses import dataclass

from torch import nn

DEFORMABLE_GROUPS = 8  # EDVR's PCD alignment (basicsr's PCDAlignment)
SINGLE_WIDTH_PARTS = ('edvr',)  # its groups keep one common width (ranked uniformly)


@dataclass(frozen=True)
class CoupledSlice:
    """The channels of one conv that a group owns: unit ``u`` is channels ``offset + u*unit_size + [0, unit_size)``.

    Args:
        module: Dotted module name in the network (``net.get_submodule`` path).
        dim: ``'out'`` (output channels: weight rows and bias) or ``'in'`` (input channels: weight columns).
        offset: First channel of the slice, for inputs that are concatenations.
        unit_size: Channels per unit (r*r for an upconv feeding PixelShuffle, else 1).
    """
    module: str
    dim: str
    offset: int = 0
    unit_size: int = 1

    def channels(self, units: list[int]) -> list[int]:
        return [self.offset + u * self.unit_size + k for u in units for k in range(self.unit_size)]


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that are pruned together: same unit indices in every slice.

    Args:
        name: Width-spec path of the width this group sets.
        part: One of ``PRUNING_PARTS``.
        width: Number of units the network has now.
        slices: Every place the units appear; the first slice has ``unit_size`` 1 (torch-pruning's group
            reduction sizes its result by the first item).
        segments: The units form this many contiguous equal segments that must each lose the same number of
            units (the deformable groups of a deformable conv that reads them).
    """
    name: str
    part: str
    width: int
    slices: tuple[CoupledSlice, ...]
    segments: int = 1

    @property
    def producers(self) -> list[str]:
        """Modules whose output channels are this group's units."""
        return [s.module for s in self.slices if s.dim == 'out']


def _out(name: str, unit_size: int = 1) -> CoupledSlice:
    return CoupledSlice(name, 'out', 0, unit_size)


def _in(name: str, offset: int = 0) -> CoupledSlice:
    return CoupledSlice(name, 'in', offset, 1)


def _require(net: nn.Module, name: str, expected: str) -> nn.Module:
    try:
        module = net.get_submodule(name)
    except AttributeError:
        module = None
    if not isinstance(module, nn.Conv2d):
        raise TypeError(f'{type(net).__name__} is not a BasicVSRNet/IconVSRNet-structured network: '
                        f'expected a Conv2d at {name!r} ({expected}), found {type(module).__name__}.')
    return module


def is_deform_conv(module: nn.Module) -> bool:
    """basicsr's modulated deformable conv (``DCNv2Pack``), recognised by shape so the engine needs no basicsr."""
    return hasattr(module, 'conv_offset') and hasattr(module, 'deformable_groups') and hasattr(module, 'weight')


def _require_deform(net: nn.Module, name: str) -> nn.Module:
    module = net.get_submodule(name)
    if not is_deform_conv(module) or module.deformable_groups != DEFORMABLE_GROUPS:
        raise TypeError(f'{type(net).__name__}: expected a modulated deformable conv with {DEFORMABLE_GROUPS} '
                        f'deformable groups at {name!r}, found {type(module).__name__}.')
    return module


def _check_in_channels(conv: nn.Conv2d, name: str, expected: int) -> None:
    if conv.in_channels != expected:
        raise TypeError(f'{name} has {conv.in_channels} input channels, the coupling map expects {expected}: '
                        'the network does not follow BasicVSRNet/IconVSRNet.')


def _trunk_group(net: nn.Module, trunk: str, frame_offset: int) -> tuple[ChannelGroup, list[ChannelGroup]]:
    """Hidden-state group of one propagation branch (without its external consumers) and its block groups."""
    first = _require(net, f'{trunk}.main.0', 'trunk first conv')
    blocks = net.get_submodule(f'{trunk}.main.2')
    width = first.out_channels
    slices = [_out(f'{trunk}.main.0'), _in(f'{trunk}.main.0', frame_offset)]
    block_groups = []
    for i in range(len(blocks)):
        conv1 = _require(net, f'{trunk}.main.2.{i}.conv1', 'residual block conv1')
        _require(net, f'{trunk}.main.2.{i}.conv2', 'residual block conv2')
        slices += [_out(f'{trunk}.main.2.{i}.conv2'), _in(f'{trunk}.main.2.{i}.conv1')]
        block_groups.append(ChannelGroup(
            f'{trunk.split("_")[0]}_blocks.{i}', 'blocks', conv1.out_channels,
            (_out(f'{trunk}.main.2.{i}.conv1'), _in(f'{trunk}.main.2.{i}.conv2'))))
    return ChannelGroup(trunk.split('_')[0], 'trunk', width, tuple(slices)), block_groups


def _tail_groups(net: nn.Module, first_in: str | None) -> list[ChannelGroup]:
    """Groups of the upsampling tail: optional fusion conv, upconvs (PixelShuffle units), conv_hr."""
    groups = []
    if first_in is not None:  # BasicVSR: fusion's output feeds upconv1
        fusion = _require(net, 'fusion', 'fusion conv')
        groups.append(ChannelGroup('fusion', 'tail', fusion.out_channels, (_out('fusion'), _in('upconv1'))))
    shuffle = net.pixel_shuffle.upscale_factor ** 2
    stages = 0
    while hasattr(net, f'upconv{stages + 1}'):
        stages += 1
    if stages == 0:
        raise TypeError(f'{type(net).__name__} has no upconv1: not a BasicVSRNet/IconVSRNet-structured network.')
    for k in range(stages):
        conv = _require(net, f'upconv{k + 1}', 'pixel-shuffle upconv')
        consumer = f'upconv{k + 2}' if k + 1 < stages else 'conv_hr'
        _require(net, consumer, 'conv after pixel shuffle')
        # the consumer slice comes first: torch-pruning sizes the group score by the first item
        groups.append(ChannelGroup(f'upsample.{k}', 'tail', conv.out_channels // shuffle,
                                   (_in(consumer), _out(f'upconv{k + 1}', shuffle))))
    hr = _require(net, 'conv_hr', 'HR conv')
    _require(net, 'conv_last', 'last conv')
    groups.append(ChannelGroup('hr', 'tail', hr.out_channels, (_out('conv_hr'), _in('conv_last'))))
    return groups


def _spynet_groups(net: nn.Module) -> list[ChannelGroup]:
    groups = []
    for level, module in enumerate(net.spynet.basic_module):
        seq = module.basic_module
        convs = [i for i, m in enumerate(seq) if isinstance(m, nn.Conv2d)]
        prefix = f'spynet.basic_module.{level}.basic_module'
        for j in range(len(convs) - 1):
            groups.append(ChannelGroup(f'spynet.{level}.{j}', 'spynet', seq[convs[j]].out_channels,
                                       (_out(f'{prefix}.{convs[j]}'), _in(f'{prefix}.{convs[j + 1]}'))))
    return groups


def _edvr_groups(net: nn.Module, backward_width: int, forward_width: int) -> list[ChannelGroup]:
    """The channel spaces of IconVSR's EDVR feature extractor (basicsr's layout), all of the EDVR's current width."""
    e, pcd, tsa = 'edvr.', 'edvr.pcd_align.', 'edvr.fusion.'
    width = _require(net, e + 'conv_first', 'EDVR first conv').out_channels
    frames = net.get_submodule(tsa + 'feat_fusion').in_channels // width
    blocks = len(net.get_submodule(e + 'feature_extraction'))
    both = (0, width)  # inputs that concatenate two tensors of the same space
    spaces = {  # group: (producers, consumer (module, offset) pairs, deformable convs read it)
        'l1': ([e + 'conv_first', *(f'{e}feature_extraction.{k}.conv2' for k in range(blocks))],
               [*((f'{e}feature_extraction.{k}.conv1', 0) for k in range(blocks)), (e + 'conv_l2_1', 0),
                *((pcd + 'offset_conv1.l1', o) for o in both), (pcd + 'dcn_pack.l1', 0),
                (pcd + 'cas_offset_conv1', width)], True),
        **{f'l1_blocks.{k}': ([f'{e}feature_extraction.{k}.conv1'], [(f'{e}feature_extraction.{k}.conv2', 0)], False)
           for k in range(blocks)},
        'l2_mid': ([e + 'conv_l2_1'], [(e + 'conv_l2_2', 0)], False),
        'l2': ([e + 'conv_l2_2'], [(e + 'conv_l3_1', 0), *((pcd + 'offset_conv1.l2', o) for o in both),
                                   (pcd + 'dcn_pack.l2', 0)], True),
        'l3_mid': ([e + 'conv_l3_1'], [(e + 'conv_l3_2', 0)], False),
        'l3': ([e + 'conv_l3_2'], [*((pcd + 'offset_conv1.l3', o) for o in both), (pcd + 'dcn_pack.l3', 0)], True),
        'offset1.l3': ([pcd + 'offset_conv1.l3'], [(pcd + 'offset_conv2.l3', 0)], False),
        'offset.l3': ([pcd + 'offset_conv2.l3'], [(pcd + 'dcn_pack.l3.conv_offset', 0),
                                                  (pcd + 'offset_conv2.l2', width)], False),
        'feat.l3': ([pcd + 'dcn_pack.l3'], [(pcd + 'feat_conv.l2', width)], False),
        'offset1.l2': ([pcd + 'offset_conv1.l2'], [(pcd + 'offset_conv2.l2', 0)], False),
        'offset2.l2': ([pcd + 'offset_conv2.l2'], [(pcd + 'offset_conv3.l2', 0)], False),
        'offset.l2': ([pcd + 'offset_conv3.l2'], [(pcd + 'dcn_pack.l2.conv_offset', 0),
                                                  (pcd + 'offset_conv2.l1', width)], False),
        'dcn.l2': ([pcd + 'dcn_pack.l2'], [(pcd + 'feat_conv.l2', 0)], False),
        'feat.l2': ([pcd + 'feat_conv.l2'], [(pcd + 'feat_conv.l1', width)], False),
        'offset1.l1': ([pcd + 'offset_conv1.l1'], [(pcd + 'offset_conv2.l1', 0)], False),
        'offset2.l1': ([pcd + 'offset_conv2.l1'], [(pcd + 'offset_conv3.l1', 0)], False),
        'offset.l1': ([pcd + 'offset_conv3.l1'], [(pcd + 'dcn_pack.l1.conv_offset', 0)], False),
        'dcn.l1': ([pcd + 'dcn_pack.l1'], [(pcd + 'feat_conv.l1', 0)], False),
        'feat.l1': ([pcd + 'feat_conv.l1'], [(pcd + 'cas_offset_conv1', 0), (pcd + 'cas_dcnpack', 0)], True),
        'cas_offset1': ([pcd + 'cas_offset_conv1'], [(pcd + 'cas_offset_conv2', 0)], False),
        'cas_offset': ([pcd + 'cas_offset_conv2'], [(pcd + 'cas_dcnpack.conv_offset', 0)], False),
        # aligned features of every frame, stacked frame-major into the TSA fusion convs
        'aligned': ([pcd + 'cas_dcnpack'], [(tsa + 'temporal_attn1', 0), (tsa + 'temporal_attn2', 0),
                                            *((tsa + c, f * width) for c in ('feat_fusion', 'spatial_attn1')
                                              for f in range(frames))], False),
        'embedding': ([tsa + 'temporal_attn1', tsa + 'temporal_attn2'], [], False),  # summed channel products
        # the output: fusion * sigmoid(attn5) * 2 + add2, read by IconVSR's keyframe fusion convs
        'output': ([tsa + 'feat_fusion', tsa + 'spatial_attn5', tsa + 'spatial_attn_add2'],
                   [(tsa + 'spatial_attn_add1', 0), ('backward_fusion', backward_width),
                    ('forward_fusion', forward_width)], False),
        'sa1': ([tsa + 'spatial_attn1'], [(tsa + 'spatial_attn2', o) for o in both], False),
        'sa2': ([tsa + 'spatial_attn2'], [(tsa + 'spatial_attn_l1', 0), (tsa + 'spatial_attn3', 0)], False),
        'sa_l1': ([tsa + 'spatial_attn_l1'], [(tsa + 'spatial_attn_l2', o) for o in both], False),
        'sa_l2': ([tsa + 'spatial_attn_l2'], [(tsa + 'spatial_attn_l3', 0)], False),
        'sa3': ([tsa + 'spatial_attn_l3', tsa + 'spatial_attn3'], [(tsa + 'spatial_attn4', 0)], False),  # added
        'sa4': ([tsa + 'spatial_attn4'], [(tsa + 'spatial_attn5', 0)], False),
        'add1': ([tsa + 'spatial_attn_add1'], [(tsa + 'spatial_attn_add2', 0)], False),
    }
    deform_convs = {*(f'{pcd}dcn_pack.l{i}' for i in (1, 2, 3)), pcd + 'cas_dcnpack'}
    groups = []
    for space, (producers, consumers, deformable) in spaces.items():
        for name in [*producers, *(c for c, _ in consumers)]:
            if name in deform_convs:
                _require_deform(net, name)
            else:
                _require(net, name, f'EDVR {space}')
        groups.append(ChannelGroup(f'edvr.{space}', 'edvr', width,
                                   (*map(_out, producers), *(_in(c, o) for c, o in consumers)),
                                   DEFORMABLE_GROUPS if deformable else 1))
    return groups


def coupling_groups(net: nn.Module) -> list[ChannelGroup]:
    """Every prunable channel group of a BasicVSRNet or IconVSRNet as it is now (widths read off the layers).

    Raises TypeError when the network does not have the expected structure, before anything is changed.
    """
    for attr in ('backward_trunk', 'forward_trunk', 'spynet', 'pixel_shuffle'):
        if not hasattr(net, attr):
            raise TypeError(f'{type(net).__name__} has no {attr!r}: the pruning engine supports '
                            'BasicVSRNet/IconVSRNet-structured networks only.')
    iconvsr = hasattr(net, 'backward_fusion')
    backward, backward_blocks = _trunk_group(net, 'backward_trunk', 3)
    forward, forward_blocks = _trunk_group(net, 'forward_trunk', 3 + (backward.width if iconvsr else 0))
    cb, cf = backward.width, forward.width
    if iconvsr:
        # keyframe fusion writes the hidden state (same indices as the trunk output); the forward trunk also
        # reads the backward features; the tail reads the forward hidden state directly
        b_fusion = _require(net, 'backward_fusion', 'IconVSR keyframe fusion')
        f_fusion = _require(net, 'forward_fusion', 'IconVSR keyframe fusion')
        edvr = b_fusion.in_channels - cb
        _check_in_channels(f_fusion, 'forward_fusion', cf + edvr)
        _check_in_channels(net.forward_trunk.main[0], 'forward_trunk.main.0', 3 + cb + cf)
        backward_extra = (_out('backward_fusion'), _in('backward_fusion'), _in('forward_trunk.main.0', 3))
        forward_extra = (_out('forward_fusion'), _in('forward_fusion'), _in('upconv1'))
        tail = _tail_groups(net, None)
        _check_in_channels(net.upconv1, 'upconv1', cf)
    else:
        fusion = _require(net, 'fusion', 'fusion conv')
        _check_in_channels(fusion, 'fusion', cb + cf)
        _check_in_channels(net.forward_trunk.main[0], 'forward_trunk.main.0', 3 + cf)
        backward_extra = (_in('fusion', 0),)
        forward_extra = (_in('fusion', cb),)
        tail = _tail_groups(net, 'upconv1')
    _check_in_channels(net.backward_trunk.main[0], 'backward_trunk.main.0', 3 + cb)
    backward = ChannelGroup(backward.name, 'trunk', cb, backward.slices + backward_extra)
    forward = ChannelGroup(forward.name, 'trunk', cf, forward.slices + forward_extra)
    edvr = _edvr_groups(net, cb, cf) if iconvsr else []
    return [backward, forward, *backward_blocks, *forward_blocks, *tail, *_spynet_groups(net), *edvr]
