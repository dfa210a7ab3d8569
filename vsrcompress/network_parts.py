"""The named parts of BasicVSRNet and IconVSRNet (and basicsr's BasicVSR/IconVSR), declared once.

Every option that names a part reads its names here: ``pruning.parts``, ``quantization.skip_parts``, the
flow learning-rate parts of the models (``train.flow_lr_mul``, ``fix_flow``) and the hidden-state layers of
feature distillation. It sits beside ``archs/`` rather than in it because ``vsrcompress.archs`` imports basicsr
(registration) and the pruning and quantization engines must not.

How the vocabularies relate: pruning removes channels, so its parts are groups of coupled widths; quantization
keeps layers in float, so its parts are sets of modules and split pruning's ``tail`` finer (``fusion``, the
``upsample`` convs with ``conv_hr``, and ``last_conv``) because their sensitivity differs; ``first_conv`` is the
first conv of each propagation trunk (pruning's ``trunk`` part, whose width it sets).
"""

# pruning.parts: groups of coupled channels (vsrcompress/pruning/coupling.py states them by module name)
PRUNING_PARTS = ('trunk', 'blocks', 'tail', 'spynet', 'edvr')

# quantization.skip_parts: full-match regexes on module names
QUANTIZATION_PARTS = {
    'spynet': r'spynet\..*',
    'edvr': r'edvr\..*',
    'first_conv': r'(backward|forward)_trunk\.main\.0',
    'last_conv': r'conv_last',
    'upsample': r'upconv\d+|conv_hr',
    'fusion': r'fusion|backward_fusion|forward_fusion',
}

# the alignment networks: trained at train.flow_lr_mul x the learning rate, frozen for train.fix_flow iterations
# (a parameter is in them when its name contains one, as basicsr's VideoRecurrentModel decides)
FLOW_PARTS = ('spynet', 'edvr')

# the recurrent hidden states: what train.feature_distill_opt.layers usually names
HIDDEN_STATE_LAYERS = ('backward_trunk', 'forward_trunk')
