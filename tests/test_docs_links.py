"""The documentation points at things that exist.

For README.md, configs/dit/README.md, projects/README.md, projects/*/README.md and docs/en/*.md:

- every relative markdown link (``[text](path)``, ``![alt](path)``, with or without ``#anchor``)
  names a file or folder of the checkout, and an anchor names a heading of the target page;
- every repository path named in code (inline backticks and fenced blocks) that starts with one of
  the repository's top-level folders (``tools/``, ``configs/``, ``dit_sam_mm/``, ...) exists.
  Paths with placeholders (``<name>``, ``{a,b}``, ``*``, ``$VAR``, ``...``) are skipped, and so
  are ``data/...`` and ``work_dirs/...``, which users create;
- no absolute path of a particular machine (``/tmp/``, ``/work/``, ``../shared``) appears.
"""
import re
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ('tools', 'configs', 'dit_sam_mm', 'demo', 'docs', 'tests', 'projects',
             'requirements')
FORBIDDEN = ('/tmp/', '/work/', '../shared')

FENCE = re.compile(r'^\s*(```|~~~)')
INLINE_CODE = re.compile(r'(`+)(.+?)\1')
# [text](target) and ![alt](target); the target ends at whitespace or ')'.
LINK = re.compile(r'!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
REPO_PATH = re.compile(r'(?<![\w./~$-])((?:%s)/[^\s`\'"()\[\],;:|=]*)' % '|'.join(TOP_LEVEL))
PLACEHOLDER = re.compile(r'[<>{}*$]|\.\.\.')


def doc_files(root: Path = ROOT) -> List[Path]:
    """The pages the checks cover."""
    files = [root / 'README.md', root / 'configs/dit/README.md', root / 'projects/README.md',
             *sorted(root.glob('projects/*/README.md')), *sorted(root.glob('docs/en/*.md'))]
    return [f for f in files if f.is_file()]


def split_code(text: str) -> Tuple[List[Tuple[int, str]], List[Tuple[int, str]]]:
    """(prose lines, code pieces) with their line numbers; code = fenced blocks + inline spans."""
    prose, code = [], []
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is not None:
            if match and match.group(1) == fence:
                fence = None
            else:
                code.append((number, line))
            continue
        if match:
            fence = match.group(1)
            continue
        code.extend((number, m.group(2)) for m in INLINE_CODE.finditer(line))
        prose.append((number, INLINE_CODE.sub('``', line)))
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r'`|\*\*|__', '', heading.strip()).lower()
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: Path) -> set:
    """The anchors of a markdown page (headings, with GitHub's -1, -2 for repeats)."""
    seen, result = {}, set()
    prose, _ = split_code(path.read_text(encoding='utf-8'))
    raw = path.read_text(encoding='utf-8').splitlines()
    for number, _line in prose:
        line = raw[number - 1]
        match = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        result.add(base if count == 0 else f'{base}-{count}')
        seen[base] = count + 1
    result.update(re.findall(r'<a\s+(?:name|id)="([^"]+)"', path.read_text(encoding='utf-8')))
    return result


def broken_links(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Relative links of ``path`` whose file, folder or anchor does not exist."""
    prose, _ = split_code(path.read_text(encoding='utf-8'))
    for number, line in prose:
        for match in LINK.finditer(line):
            target = match.group(1)
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):  # http:, mailto:, ...
                continue
            file_part, _, anchor = target.partition('#')
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f'{path.relative_to(root)}:{number}: {target}'
            if file_part and not dest.exists():
                yield f'{where} (no such file)'
            elif file_part and root.resolve() not in (dest, *dest.parents):
                yield f'{where} (outside the repository)'
            elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
                yield f'{where} (no heading with anchor #{anchor})'


def missing_paths(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Repository paths named in the code of ``path`` that do not exist."""
    _, code = split_code(path.read_text(encoding='utf-8'))
    for number, piece in code:
        for match in REPO_PATH.finditer(piece):
            candidate = match.group(1).rstrip('.')
            if PLACEHOLDER.search(candidate):
                continue
            if not (root / candidate).exists():
                yield f'{path.relative_to(root)}:{number}: {candidate}'


def machine_paths(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Lines naming a path of one particular machine."""
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        for word in FORBIDDEN:
            if word in line:
                yield f'{path.relative_to(root)}:{number}: {word!r} in {line.strip()!r}'


DOCS = doc_files()


def test_the_pages_are_there():
    names = {str(p.relative_to(ROOT)) for p in DOCS}
    for page in ('README.md', 'configs/dit/README.md', 'docs/en/get_started.md',
                 'docs/en/dataset_prepare.md', 'docs/en/train_test.md', 'docs/en/inference.md',
                 'docs/en/benchmark.md', 'docs/en/design.md', 'docs/en/grefcoco.md'):
        assert page in names


@pytest.mark.parametrize('path', DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_links_point_at_files_and_headings(path):
    assert list(broken_links(path)) == []


@pytest.mark.parametrize('path', DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_named_repository_paths_exist(path):
    assert list(missing_paths(path)) == []


@pytest.mark.parametrize('path', DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_no_paths_of_a_particular_machine(path):
    assert list(machine_paths(path)) == []


# ---- the checker itself ----------------------------------------------------------------------

def make_repo(tmp_path: Path, page: str) -> Path:
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools/train.py').write_text('')
    (tmp_path / 'docs/en').mkdir(parents=True)
    (tmp_path / 'docs/en/other.md').write_text('# Other page\n\n## Train `tools/train.py` fast\n')
    doc = tmp_path / 'docs/en/page.md'
    doc.write_text(page)
    return doc


def test_checker_passes_good_links_and_paths(tmp_path):
    doc = make_repo(tmp_path, (
        '# Page\n\nSee [other](other.md), [its section](other.md#train-toolstrainpy-fast), '
        '[here](#page), [train](../../tools/train.py) and [web](https://example.com/x).\n'
        'Run `python tools/train.py CONFIG` or `tools/<name>.py`; data in `data/coco/x.jpg`, '
        '`work_dirs/run/epoch_1.pth`.\n\n```bash\npython tools/train.py\n'
        'python tools/{a,b}.py\n```\n'))
    assert list(broken_links(doc, tmp_path)) == []
    assert list(missing_paths(doc, tmp_path)) == []
    assert list(machine_paths(doc, tmp_path)) == []


def test_checker_finds_a_broken_link(tmp_path):
    doc = make_repo(tmp_path, '# Page\n\nSee [the guide](guide.md) and ![pic](img/missing.png).\n')
    found = list(broken_links(doc, tmp_path))
    assert len(found) == 2
    assert 'guide.md (no such file)' in found[0]
    assert 'img/missing.png' in found[1]


def test_checker_finds_a_missing_anchor(tmp_path):
    doc = make_repo(tmp_path, '# Page\n\n[a](other.md#no-such-heading) [b](#page) [c](#nope)\n')
    found = list(broken_links(doc, tmp_path))
    assert len(found) == 2 and '#no-such-heading' in found[0] and '#nope' in found[1]


def test_checker_finds_a_missing_repository_path(tmp_path):
    doc = make_repo(tmp_path, (
        '# Page\n\nRun `python tools/trian.py configs/x.py`.\n\n'
        '```bash\nbash tools/dist_train.sh CONFIG 8\n```\n'))
    found = list(missing_paths(doc, tmp_path))
    assert [f.split(': ')[-1] for f in found] == [
        'tools/trian.py', 'configs/x.py', 'tools/dist_train.sh']


def test_checker_ignores_links_inside_code(tmp_path):
    doc = make_repo(tmp_path, '# Page\n\n`[x](nowhere.md)`\n\n```\n[y](nowhere.md)\n```\n')
    assert list(broken_links(doc, tmp_path)) == []


def test_checker_finds_machine_paths(tmp_path):
    doc = make_repo(tmp_path, '# Page\n\nconfig in /tmp/bench/x.py, data in ../shared/device\n')
    found = list(machine_paths(doc, tmp_path))
    assert len(found) == 2
