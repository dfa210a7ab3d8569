"""The docs are an index that resolves: every option key the code reads is in docs/options.md, and every link of
README.md and docs/*.md, and every docs pointer in the comments of options/*.yml, leads to a file and heading that
exist. Plain text checks, no networks trained: well under a second."""
import glob
import inspect
import os
import re

import pytest

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.export.onnx_export import PRECISIONS
from vsrcompress.export.openvino_runtime import INFERENCE_PRECISIONS
from vsrcompress.feature_distillation import FEATURE_DISTILL_KEYS, FEATURE_DISTILL_MODES
from vsrcompress.models.recurrent_vsr_model import OPTIMIZERS
from vsrcompress.option_checks import PRUNING_MODEL_KEYS, QAT_MODEL_KEYS
from vsrcompress.pruning.config import ALLOWED_KEYS as PRUNING_KEYS
from vsrcompress.pruning.config import RANKINGS, PruningConfig
from vsrcompress.network_parts import PRUNING_PARTS
from vsrcompress.pruning.importance import CRITERIA
from vsrcompress.quantization.config import CALIBRATORS, QUANTIZATION_PARTS, QuantConfig
from vsrcompress.recipe.plan import _STAGE_KEYS, EXPORT_DEFAULTS, MODEL_TYPES, REPORT_DEFAULTS, STAGES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKDOWN_FILES = ['README.md'] + sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'docs', '*.md')))
OPTION_FILES = sorted(glob.glob(os.path.join(REPO, 'options', '**', '*.yml'), recursive=True))
# keys basicsr itself sets or reads at run time; documented by BasicSR, not by docs/options.md
BASICSR_RUNTIME_KEYS = {'models', 'training_states', 'name', 'scale', 'batch_size_per_gpu'}


def read(relpath: str) -> str:
    with open(os.path.join(REPO, relpath), encoding='utf-8') as f:
        return f.read()


def without_code(text: str) -> str:
    """Markdown without fenced code blocks and inline code: links and headings in code are not links or headings."""
    text = re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)
    return re.sub(r'`[^`\n]*`', '', text)


def github_anchor(heading: str) -> str:
    """GitHub's heading id: rendered text, lowercase, punctuation removed (not - or _), spaces to hyphens."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading.strip())  # a link in a heading keeps its text
    return re.sub(r'[^\w\- ]', '', text.lower()).replace(' ', '-')


def anchors(relpath: str) -> set[str]:
    """Ids of every heading of a Markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    text = re.sub(r'^```.*?^```', '', read(relpath), flags=re.S | re.M)
    seen: dict[str, int] = {}
    ids = set()
    for match in re.finditer(r'^#{1,6}[ \t]+(.+?)[ \t#]*$', text, flags=re.M):
        base = github_anchor(match.group(1))
        count = seen.get(base, 0)
        ids.add(base if count == 0 else f'{base}-{count}')
        seen[base] = count + 1
    return ids


def broken_target(source: str, target: str) -> str | None:
    """Why a relative link from ``source`` (a repository path) does not resolve, or None when it does."""
    path, _, anchor = target.partition('#')
    resolved = os.path.normpath(os.path.join(os.path.dirname(source), path)) if path else source
    if not os.path.exists(os.path.join(REPO, resolved)):
        return f'{source}: link {target!r}: {resolved} does not exist'
    if anchor and resolved.endswith('.md') and anchor not in anchors(resolved):
        return f'{source}: link {target!r}: {resolved} has no heading with the id #{anchor}'
    return None


def test_github_anchor_rules():
    assert github_anchor('CPU engines at full size') == 'cpu-engines-at-full-size'
    assert github_anchor('network_g') == 'network_g'
    heading = 'Measuring speed (`scripts/benchmark_pruning.py`)'
    assert github_anchor(heading) == 'measuring-speed-scriptsbenchmark_pruningpy'
    assert github_anchor('Full-size models at 640x360') == 'full-size-models-at-640x360'


@pytest.mark.parametrize('source', MARKDOWN_FILES)
def test_every_relative_link_resolves(source):
    links = re.findall(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)', without_code(read(source)))
    relative = [t for t in links if not re.match(r'[a-z]+:', t)]
    problems = [p for p in (broken_target(source, t) for t in relative) if p]
    assert not problems, '\n'.join(problems)


def test_readme_links_into_the_docs():
    links = re.findall(r'\]\(([^)\s]+)\)', without_code(read('README.md')))
    for doc in ('docs/options.md', 'docs/results.md', 'docs/pruning.md', 'docs/quantization.md', 'docs/deploy.md',
                'docs/footage.md', 'docs/openvino.md'):
        assert any(t.split('#')[0] == doc for t in links), f'README.md does not link {doc}'


def test_option_file_pointers_resolve():
    pointers, problems = 0, []
    for path in OPTION_FILES:
        source = os.path.relpath(path, REPO)
        for number, line in enumerate(read(source).splitlines(), 1):
            for target in re.findall(r'\bdocs/[\w./-]+\.md(?:#[\w-]+)?', line):
                pointers += 1
                problem = broken_target('README.md', target)  # pointers are relative to the repository root
                if problem:
                    problems.append(f'{source}:{number}: {problem.split(": ", 1)[1]}')
            for heading in re.findall(r'README: "([^"]+)"', line):
                pointers += 1
                if github_anchor(heading) not in anchors('README.md'):
                    problems.append(f'{source}:{number}: README.md has no heading {heading!r}')
    assert not problems, '\n'.join(problems)
    assert pointers >= 7  # the pruning, quantization and recipe sections of the option files point at the docs


# ---------------------------------------------------------------------------------------------- docs/options.md
def options_sections() -> dict[str, str]:
    """docs/options.md split at its ``## `` headings: heading id -> text."""
    parts = re.split(r'^## +(.+)$', read('docs/options.md'), flags=re.M)
    return {github_anchor(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


def undocumented(section: str, names) -> list[str]:
    """Names in no code span of the section, neither alone (`key`) nor in a dotted path (`a.key`, `key.type`)."""
    text = options_sections()[section]
    return sorted(n for n in set(names)
                  if not re.search(r'`(?:[\w.-]+\.)?' + re.escape(str(n)) + r'(?:\.[\w.-]+)?`', text))


def source_keys(pattern: str, folder: str) -> set[str]:
    keys = set()
    for path in glob.glob(os.path.join(REPO, 'vsrcompress', folder, '*.py')):
        keys |= set(re.findall(pattern, read(os.path.relpath(path, REPO))))
    return keys


def test_options_page_has_one_section_per_option_group():
    assert {'network_g', 'training', 'pruning', 'quantization', 'recipe', 'datasets'} <= set(options_sections())


def test_network_keys_are_documented():
    args = {name for cls in (BasicVSRNet, IconVSRNet) for name in inspect.signature(cls.__init__).parameters}
    widths = {key for cls in (BasicVSRNet, IconVSRNet) for key in cls(num_feat=8, num_block=1).width_spec()}
    assert not undocumented('network_g', (args - {'self'}) | widths | {'BasicVSRNet', 'IconVSRNet'})


def test_training_keys_are_documented():
    read_keys = source_keys(r"\['(?:train|path)'\](?:\.get\(|\[)'(\w+)'", 'models')
    read_keys |= source_keys(r"opt\.get\('(network_teacher)'", 'models')
    assert {'fix_flow', 'distill_opt', 'feature_distill_opt', 'pretrain_network_teacher'} <= read_keys
    names = (read_keys - BASICSR_RUNTIME_KEYS) | set(FEATURE_DISTILL_KEYS) | set(FEATURE_DISTILL_MODES)
    names |= set(OPTIMIZERS) | set(MODEL_TYPES.values()) | {'DistillVSRModel', 'ema_decay', 'flow_lr_mul'}
    assert not undocumented('training', names)


def test_pruning_keys_and_values_are_documented():
    model_keys = set(PRUNING_MODEL_KEYS)  # what option_checks.parse_pruning_section reads beside the engine's keys
    assert 'step_interval' in model_keys
    # every config field is a YAML key (``ratios`` is read from ``ratio``)
    fields = {f.replace('ratios', 'ratio') for f in PruningConfig.__dataclass_fields__}
    assert fields <= set(PRUNING_KEYS)
    assert not undocumented('pruning',
                            set(PRUNING_KEYS) | model_keys | set(CRITERIA) | set(RANKINGS) | set(PRUNING_PARTS))


def test_quantization_keys_and_values_are_documented():
    model_keys = set(QAT_MODEL_KEYS)  # what option_checks.parse_quantization_section reads beside the engine's keys
    assert 'ptq_val_clips' in model_keys
    names = set(QuantConfig.__dataclass_fields__) | model_keys | set(CALIBRATORS) | set(QUANTIZATION_PARTS)
    assert not undocumented('quantization', names)


def test_recipe_keys_and_values_are_documented():
    stage_keys = {key for keys in _STAGE_KEYS.values() for key in keys}
    names = {'stages'} | set(STAGES) | stage_keys | set(EXPORT_DEFAULTS) | set(REPORT_DEFAULTS)
    assert not undocumented('recipe', names | set(PRECISIONS) | set(INFERENCE_PRECISIONS))


def test_dataset_keys_are_documented():
    read_keys = source_keys(r"opt(?:\.get\(|\[)'(\w+)'", 'data')
    assert {'gt_size', 'interval_list', 'num_frame', 'meta_info_file'} <= read_keys
    assert not undocumented('datasets', (read_keys - BASICSR_RUNTIME_KEYS) | {'FootageRecurrentDataset',
                                                                             'FootageTestDataset'})
