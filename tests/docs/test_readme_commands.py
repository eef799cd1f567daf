"""A scripted walk through the documented commands.

Every command of the ```` ```bash ```` blocks of :data:`DOCS` is either run or
listed in :data:`RULES` with the reason it is not; a command that is neither
fails :func:`test_every_documented_command_is_run_or_listed`, so the docs stay
true when commands are added.

The walk (marker ``readme_walk``, ``make docs-check``) runs each document's
commands in order, as written, in a temporary folder that holds links to
``configs/``, ``tools/`` and ``projects/`` (``data/`` and ``work_dirs/`` are
written there). ``python`` on the ``PATH`` is a shim that makes the runs tiny
without changing what is typed: generators get small counts and sizes
(:data:`TINY_ARGS`), ``tools/train.py`` and ``tools/test.py`` get
``--cfg-options`` for one epoch, batches of 2 and no loader workers (plus
:data:`CONFIG_OPTIONS`), and a named ``epoch_N.pth`` that a one-epoch run did
not write becomes the newest checkpoint of that folder. Files that the text
introduces as "`path`:" followed by a code block are written first.
"""
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = ['README.md', 'docs/writing_plugins.md', 'projects/medical/README.md',
        'projects/satellite/README.md', 'projects/industrial/README.md',
        'projects/example_plugin/README.md']
LINKED = ['configs', 'tools', 'projects', 'docker', 'Makefile']


class Command(NamedTuple):
    doc: str
    line: int
    text: str
    block: int = 0  # index of its fenced block in the document


class Rule(NamedTuple):
    pattern: str  # re.search on the command, whitespace collapsed
    run: bool
    why: str = ''  # the reason a command is not run
    subs: tuple = ()  # (regex, replacement) applied before running


def skip(pattern: str, why: str) -> Rule:
    return Rule(pattern, False, why)


def run(pattern: str, *subs) -> Rule:
    return Rule(pattern, True, subs=subs)


WEIGHTS = 'needs released DINOv3 weights, which cannot be downloaded here'
SYNOPSIS = 'synopsis with placeholders (CONFIG, SRC, ...)'
SERVER = ('needs a running Triton server; tests/deploy/test_triton.py '
          'serves and queries one')
INSTALL = 'changes the installed environment (the plugins are installed ' \
    'by make test; tests/test_plugins.py installs one into a temp folder)'
PIP_TARGET = (r'pip install (--no-deps --no-build-isolation )?-e (\S+)',
              r'python -m pip install -q --no-deps --no-build-isolation '
              r'--target "$WALK_SITE" \2')

# First match wins. Order: specific skips, then what runs.
RULES: List[Rule] = [
    skip(r'checkpoints/dinov3_vit', WEIGHTS),
    skip(r'^make test$', 'the whole test suite (this test is part of it)'),
    skip(r'^(docker|kubectl) ', 'no Docker engine or cluster here; '
         'tests/deploy check the manifests against a real server'),
    skip(r'^pip install -e \'\.\[', 'installs this package (make does it)'),
    skip(r'^pip install -e projects/\w+( |$)|^pip install projects/|'
         r'^\.venv/bin/pip install', INSTALL),
    skip(r'^pip install --no-deps --no-build-isolation -e projects/'
         r'(industrial|medical|satellite)$', INSTALL),
    skip(r'python -m dinov3_mm\.deploy serve', 'starts a server that runs '
         'until stopped; tests/deploy/test_triton.py runs it'),
    skip(r'tools/triton_client\.py', SERVER),
    skip(r'(tools/(train|test)\.py|dist_(train|test)\.sh) CONFIG|'
         r'convert_checkpoint\.py SRC DST|infer\.py CONFIG CHECKPOINT',
         SYNOPSIS),
    skip(r'NNODES=2 |--merge-shards', 'multi-node synopsis / merges a '
         'sharded checkpoint; tests/tools/test_dist_fsdp.py trains with '
         '--fsdp on 2 processes and merges with --merge-shards'),
    skip(r'validate_dataset\.py data/my_dataset', 'example path of the '
         "user's own data; the segmentation section validates a real one"),
    skip(r'^(\.venv/bin/)?python -m pytest (-n 0 )?projects/\w+/tests',
         "the plugin's tests, part of make test"),
    skip(r'projects/satellite/tools/compute_band_stats\.py',
         'the satellite tests run it on generated tiles'),
    run(r'^make demo$', (r'^make demo$',
                         'make -f "$WALK_REPO/Makefile" '
                         '-o .venv/.dinov3_mm-dev-installed demo PY=python')),
    run(r'^pip install --no-deps --no-build-isolation -e '
        r'(projects/example_plugin|\.\./my_dinov3_plugin)$', PIP_TARGET),
    run(r'^pip uninstall -y my_dinov3_plugin$',
        (r'.*', 'rm -rf "$WALK_SITE"/my_dinov3_plugin*')),
    run(r'^python tools/deploy\.py .* \[--', (r' \[[^]]*\]', '')),
    run(r'^(\w+=\S+ )*python '),
    run(r'^tools/dist_train\.sh '),
]

# Generators: appended arguments (argparse keeps the last value).
TINY_ARGS = {
    'tools/generate_shapes_dataset.py': ['--train', '3', '--val', '2',
                                         '--test', '2', '--size', '64'],
    'tools/generate_shapes_dataset.py --seg': ['--train', '8', '--val', '4',
                                               '--size', '32'],
    'tools/generate_shapes_dataset.py --instances': ['--train', '16',
                                                     '--val', '8',
                                                     '--test', '4'],
    'projects/medical/tools/generate_mri_volumes.py': [
        '--num-train', '2', '--num-val', '1', '--shape', '64', '64', '4'],
    'projects/satellite/tools/generate_geotiff_dataset.py': [
        '--train', '4', '--val', '2', '--tile-size', '64'],
    'projects/industrial/tools/generate_mvtec_like.py': [
        '--size', '64', '--num-train', '4', '--num-test-good', '2',
        '--num-test-defect', '2', '--num-good', '6', '--num-defect', '2',
        '--num-seg-train', '4'],
}
# Extra --cfg-options of train.py / test.py, by config file name.
CONFIG_OPTIONS = {
    'vitb16_unet_mri.py': [
        'train_dataloader.dataset.pipeline.5.scale=64',
        'train_dataloader.dataset.pipeline.6.crop_size=64',
        'val_dataloader.dataset.pipeline.4.size=64'],
}

SHIM = '''\
#!{exe}
"""python for the README walk: the same command on tiny settings."""
import glob
import os
import re
import sys

REAL = {exe!r}
TINY_ARGS = {tiny!r}
CONFIG_OPTIONS = {options!r}


def newest_epoch(path):
    found = glob.glob(os.path.join(os.path.dirname(path), 'epoch_*.pth'))
    if not found:
        return path
    return max(found, key=lambda p: int(re.findall(r'(\\d+)', p)[-1]))


def cfg_options(config, mode):
    from mmengine.config import Config
    cfg = Config.fromfile(config, import_custom_modules=False)
    opts = ['train_cfg.max_epochs=1'] if mode == 'train' else []
    splits = ('train', 'val', 'test') if mode == 'train' else ('test', )
    for split in splits:
        if cfg.get(split + '_dataloader'):
            opts += [f'{{split}}_dataloader.{{k}}' for k in (
                'num_workers=0', 'persistent_workers=False', 'batch_size=2')]
    return opts + CONFIG_OPTIONS.get(os.path.basename(config), [])


args = sys.argv[1:]
if args and args[0].endswith('.py'):
    args = [newest_epoch(a) if re.search(r'epoch_\\d+\\.pth$', a)
            and not os.path.exists(a) else a for a in args]
    key = args[0] + ''.join(f' {{flag}}' for flag in ('--seg', '--instances')
                            if flag in args)
    args += TINY_ARGS.get(key, [])
    mode = os.path.basename(args[0])[:-3]
    if args[0].startswith('tools/') and mode in ('train', 'test'):
        extra = cfg_options(args[1], mode)
        if '--cfg-options' in args:
            at = args.index('--cfg-options') + 1
            args[at:at] = extra
        else:
            args += ['--cfg-options'] + extra
os.execv(REAL, [REAL] + args)
'''


def logical_lines(block: str) -> List[tuple]:
    """``(offset, command)`` pairs of a bash block: continuation lines and
    open quotes joined, comments dropped."""
    commands, current, start = [], '', 0
    for index, line in enumerate(block.splitlines()):
        if not current and (not line.strip() or
                            line.lstrip().startswith('#')):
            continue
        if not current:
            start = index
        current += line + '\n'
        if current.endswith('\\\n'):
            current = current[:-2]
            continue
        try:
            shlex.split(current, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        commands.append((start, strip_comment(current).strip()))
        current = ''
    return commands


def strip_comment(command: str) -> str:
    """The command without a trailing ``# comment`` outside quotes."""
    quote = None
    for i, char in enumerate(command):
        if quote:
            quote = None if char == quote else quote
        elif char in '\'"':
            quote = char
        elif char == '#' and (i == 0 or command[i - 1].isspace()):
            return command[:i]
    return command


def fenced_blocks(text: str):
    """``(language, first line number, body, text before)`` of each fence."""
    pattern = re.compile(r'^( *)```(\w*)\n(.*?)^\1```', re.M | re.S)
    for match in pattern.finditer(text):
        body = textwrap.dedent(match.group(3))
        line = text.count('\n', 0, match.start()) + 2
        yield match.group(2), line, body, text[:match.start()]


def extract_commands(doc: str) -> List[Command]:
    text = (REPO / doc).read_text()
    commands = []
    for block, (lang, line, body, _) in enumerate(fenced_blocks(text)):
        if lang == 'bash':
            commands += [Command(doc, line + offset, cmd, block)
                         for offset, cmd in logical_lines(body)]
    return commands


def named_files(doc: str) -> Dict[str, str]:
    """Code blocks that the text introduces as "`path`:", by path."""
    files = {}
    for lang, _, body, before in fenced_blocks((REPO / doc).read_text()):
        match = re.search(r'`([\w./-]+\.\w+)`:\s*$', before)
        if lang in ('python', 'toml') and match:
            files[match.group(1)] = body
    return files


def rule_for(command: Command) -> Optional[Rule]:
    flat = ' '.join(command.text.split())
    return next((r for r in RULES if re.search(r.pattern, flat)), None)


def test_every_documented_command_is_run_or_listed():
    missing = [f'{c.doc}:{c.line}: {c.text}' for doc in DOCS
               for c in extract_commands(doc) if rule_for(c) is None]
    assert not missing, (
        'documented commands neither run by the walk nor listed with a '
        'reason in RULES of tests/docs/test_readme_commands.py:\n' +
        '\n'.join(missing))


def test_extraction_joins_continuations_quotes_and_drops_comments():
    block = ('# a comment\n'
             'python a.py x \\\n    --y 1   # note\n'
             'python -c "\nprint(1)"\n'
             'make demo   # main job\n')
    assert [c for _, c in logical_lines(block)] == [
        'python a.py x     --y 1', 'python -c "\nprint(1)"', 'make demo']
    assert rule_for(Command('d', 1, 'docker build .')).run is False
    assert rule_for(Command('d', 1, 'rm -rf /')) is None


class Walk:
    """A temporary checkout-like folder in which commands run."""

    def __init__(self, root: Path):
        self.dir = root / 'checkout'
        self.dir.mkdir(parents=True)
        for name in LINKED:
            (self.dir / name).symlink_to(REPO / name)
        self.site = root / 'site'
        self.site.mkdir()
        bin_dir = root / 'bin'
        bin_dir.mkdir()
        shim = bin_dir / 'python'
        shim.write_text(SHIM.format(exe=sys.executable, tiny=TINY_ARGS,
                                    options=CONFIG_OPTIONS))
        shim.chmod(0o755)
        self.env = dict(os.environ, MPLBACKEND='Agg',
                        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
                        PYTHONPATH=os.pathsep.join([str(self.site),
                                                    str(REPO)]),
                        WALK_SITE=str(self.site), WALK_REPO=str(REPO))
        self.env.pop('DINOV3_MM_NO_PLUGINS', None)
        self.env.pop('MAKEFLAGS', None)

    def write_files(self, files: Dict[str, str]):
        for rel, body in files.items():
            path = self.dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)

    def run(self, command: Command, rule: Rule, timeout: float = 600):
        text = command.text
        for pattern, replacement in rule.subs:
            text = re.sub(pattern, replacement, text)
        proc = subprocess.run(['bash', '-c', text], cwd=self.dir,
                              env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=timeout)
        assert proc.returncode == 0, (
            f'{command.doc}:{command.line}: `{text}` exited '
            f'{proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}')
        return proc


def walk(doc: str, tmp_path: Path) -> Walk:
    runner = Walk(tmp_path)
    runner.write_files(named_files(doc))
    for command in extract_commands(doc):
        rule = rule_for(command)
        assert rule is not None, f'{command.doc}:{command.line} not listed'
        if rule.run:
            runner.run(command, rule)
    return runner


@pytest.mark.readme_walk
@pytest.mark.parametrize('doc', DOCS)
def test_documented_commands_run(doc, tmp_path):
    walk(doc, tmp_path)


@pytest.mark.readme_walk
def test_merged_lora_checkpoint_loads_as_readme_says(tmp_path):
    """The README's LoRA block, then the unmerged checkpoint with the LoRA
    config and the merged one as the README loads it predict the same."""
    import pickle

    import numpy as np
    commands = extract_commands('README.md')
    merge = next(c for c in commands if 'tools/merge_lora.py' in c.text)
    block = [c for c in commands if c.block == merge.block]
    runner = Walk(tmp_path)
    for command in block:
        runner.run(command, rule_for(command))
    readme_test = [c for c in block if 'tools/test.py' in c.text][-1]
    assert 'merged.pth' in readme_test.text and 'model.lora=None' in (
        readme_test.text)
    lora_ckpt = merge.text.split()[3]
    runner.run(Command('README.md', 0, 'python tools/test.py '
                       'configs/classification/vits16_lora_shapes.py '
                       f'{lora_ckpt} --out unmerged.pkl'), rule_for(merge))
    runner.run(readme_test._replace(text=readme_test.text +
                                    ' --out merged.pkl'), rule_for(merge))

    def scores(name):
        with open(runner.dir / name, 'rb') as f:
            return np.stack([np.asarray(s['pred_score'])
                             for s in pickle.load(f)])

    np.testing.assert_allclose(scores('merged.pkl'), scores('unmerged.pkl'),
                               atol=1e-4)
