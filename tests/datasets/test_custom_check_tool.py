"""custom_refer.py check: a good folder passes; each kind of problem is named with file and
line, and every problem of a file is listed (not only the first)."""
import json

import numpy as np
import pytest
from PIL import Image
from tool_loader import load_tool

from custom_fixture import write_lines
from dit_sam_mm.utils.cli import run_main

TOOL = load_tool('tools/dataset_converters/custom_refer.py')
TRIANGLE = [[1, 1, 9, 1, 9, 7]]


def record(record_id, image='a.png', sentences=('the box', ), **fields):
    """A record on a 12x10 image; ``fields`` replace or add fields (the target)."""
    if 'no_target' not in fields:
        fields.setdefault('objects', [dict(polygons=TRIANGLE)])
    return dict(dict(id=record_id, image=image, width=12, height=10,
                     sentences=list(sentences)), **fields)


@pytest.fixture
def root(tmp_path):
    for name in ('a.png', 'b.png'):
        Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / name)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / 'empty_mask.png')
    Image.fromarray(np.ones((5, 5), np.uint8)).save(tmp_path / 'small.png')
    write_lines(tmp_path / 'val.jsonl', [record(1, 'b.png', ['the left box'])])
    return tmp_path


def check(root, capsys, *options):
    status = TOOL.main(['check', str(root), '--splits', 'train', 'val', *map(str, options)])
    return status, capsys.readouterr().out


def test_a_good_folder_passes(root, vocab_file, capsys):
    write_lines(root / 'train.jsonl', [record(1), record(2, no_target=True),
                                       record(3, objects=[dict(polygons=TRIANGLE)] * 2)])
    status, out = check(root, capsys, '--vocab-file', vocab_file)
    assert status == 0, out
    assert '[OK]    train: 3 records, 3 sentences on 1 images; no-target sentences 1, ' \
        'multi-target 1' in out
    assert out.splitlines()[-1].startswith('OK: 0 error(s), 0 warning(s)')


def test_every_problem_is_named(root, vocab_file, capsys):
    write_lines(root / 'train.jsonl', [
        record(1),
        record(1, sentences=['a duplicate']),                             # line 2
        record(3, objects=[dict(polygons=[[1, 1, 5, 5, 9, 9]])]),         # 3: on one line
        record(4, objects=[dict(polygons=[[20, 20, 30, 20, 30, 30]])]),   # 4: outside
        record(5, objects=[dict(mask='empty_mask.png')]),                 # 5: no pixel
        record(6, width=13),                                              # 6: other size
        record(7, sentences=['\u200b\u200b']),                             # 7: no word piece
        record(8, sentences=['zebra xylophone']),                         # 8: all [UNK]
        record(9, image='missing.png'),                                   # 9: no image
        record(10, objects=[dict(mask='small.png')]),                     # 10: small mask
    ])
    status, out = check(root, capsys, '--vocab-file', vocab_file)
    assert status == 1
    lines = out.splitlines()

    def found(text):
        return [line for line in lines if text in line]

    assert found("train.jsonl, line 2: id: 1 repeats the id of line 1")
    assert found('train.jsonl, line 3: objects[0].polygons[0] encloses no area')
    assert found('train.jsonl, line 4: objects[0].covers no pixel')
    assert found('train.jsonl, line 5: objects[0].covers no pixel')
    assert found('train.jsonl, line 6: width, height: 13x10, but line 1 gives')
    assert found(r"train.jsonl, line 7: sentences[0] '\u200b\u200b' tokenizes to nothing")
    warned = found("train.jsonl, line 8: sentences[0] 'zebra xylophone' none of its")
    assert warned and warned[0].startswith('[WARN]')
    assert found('image missing.png not found under')
    assert found('train.jsonl, line 10: objects[0].mask: mask ')
    assert found('small.png is 5x5 pixels, but its image is 12x10')
    assert lines[-1].startswith('FAILED: 8 error(s), 1 warning(s)')


def test_images_of_another_size_and_unreadable_ones(root, capsys):
    Image.fromarray(np.zeros((10, 14, 3), np.uint8)).save(root / 'a.png')
    (root / 'c.png').write_bytes(b'not an image')
    write_lines(root / 'train.jsonl', [record(1), record(2, image='c.png')])
    status, out = check(root, capsys)
    assert status == 1
    assert '14x10 pixels' in out and 'image c.png: ' in out
    assert 'sentences not tokenized (give --vocab-file or --tokenizer)' in out


def test_a_line_that_is_not_json_stops_the_file(root, capsys):
    (root / 'train.jsonl').write_text(json.dumps(record(1)) + '\n{"id": 2,\n')
    status = run_main(lambda: TOOL.main(['check', str(root)]), 'custom_refer.py')
    err = capsys.readouterr().err
    assert status == 1 and 'train.jsonl, line 2: not valid JSON' in err
