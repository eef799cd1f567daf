"""Packaging of dinov3_mm.

Dependencies live in ``requirements/*.txt``; ``runtime.txt`` is installed by
default, every other file is an extra (``pip install -e '.[dev]'``).
"""
import os.path as osp
import re
from typing import Dict, List

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version() -> str:
    """Read ``__version__`` from ``dinov3_mm/version.py`` without importing."""
    path = osp.join(HERE, 'dinov3_mm', 'version.py')
    with open(path, encoding='utf-8') as f:
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]",
                          f.read(), re.M)
    if match is None:
        raise RuntimeError('dinov3_mm/version.py defines no __version__')
    return match.group(1)


def parse_requirements(name: str) -> List[str]:
    """Requirement specifiers of ``requirements/<name>.txt``.

    Comments and blank lines are skipped; ``-r other.txt`` lines are followed.
    """
    path = osp.join(HERE, 'requirements', f'{name}.txt')
    requirements = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith(('-r ', '--requirement ')):
                other = line.split(None, 1)[1]
                requirements += parse_requirements(osp.splitext(other)[0])
            else:
                requirements.append(line)
    return requirements


def _unique(items: List[str]) -> List[str]:
    return list(dict.fromkeys(items))


def get_extras() -> Dict[str, List[str]]:
    """The optional dependency groups.

    ``lite`` (mmcv-lite) is kept out of ``all`` and ``dev``: an environment
    with the full mmcv (compiled ops) must not get mmcv-lite installed over
    it, so mmcv is chosen by the installer (the Makefile adds ``lite`` only
    where no mmcv is installed).
    """
    extras = {
        name: parse_requirements(name)
        for name in ('medical', 'satellite', 'serve', 'mmseg', 'det')
    }
    features = [req for group in extras.values() for req in group]
    extras['all'] = _unique(features)
    # Everything the test suite exercises, plus the test tools.
    extras['dev'] = _unique(parse_requirements('tests') + features)
    extras['lite'] = parse_requirements('lite')
    return extras


if __name__ == '__main__':
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        long_description = f.read()
    setup(
        name='dinov3_mm',
        version=get_version(),
        description='OpenMMLab-style toolkit for adapting DINOv3 models',
        long_description=long_description,
        long_description_content_type='text/markdown',
        python_requires='>=3.10',
        packages=find_packages(include=['dinov3_mm', 'dinov3_mm.*']),
        include_package_data=True,
        # Triton Python-backend models copied into model repositories
        package_data={'dinov3_mm.deploy': ['triton_models/*.py']},
        install_requires=parse_requirements('runtime'),
        extras_require=get_extras(),
        classifiers=[
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        zip_safe=False,
    )
