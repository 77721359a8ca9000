"""Installation of the dit_sam_mm plugin; pins come from requirements/*.txt."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_requirements(name: str) -> list:
    """Return the requirement lines of ``requirements/<name>.txt``."""
    lines = (ROOT / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [line.strip() for line in lines
            if line.strip() and not line.lstrip().startswith('#')]


def read_version() -> str:
    namespace: dict = {}
    exec((ROOT / 'dit_sam_mm' / 'version.py').read_text(), namespace)
    return namespace['__version__']


setup(
    name='dit_sam_mm',
    version=read_version(),
    description='Deep Instruction Tuning for Segment Anything (DIT-SAM) '
    'as an MMSegmentation 1.x plugin',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['dit_sam_mm', 'dit_sam_mm.*']),
    install_requires=read_requirements('runtime'),
    extras_require={
        'tests': read_requirements('tests'),
        'optional': read_requirements('optional'),
        'demo': read_requirements('demo'),
    },
    zip_safe=False,
)
