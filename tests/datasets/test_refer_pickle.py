"""The restricted unpickler of refs(*).p files."""
import os
import pickle
import pickletools

import pytest

from dit_sam_mm.datasets import (RefCOCODataset, UnsafePickleError,
                                 load_plain_pickle, load_refs)


class _WritesMarker:
    """Unpickling this calls os.system, which would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _malicious_refs(marker) -> bytes:
    refs = [dict(ref_id=1, ann_id=1, image_id=1, split='train',
                 sentences=[dict(sent_id=1, raw='the cat')],
                 payload=_WritesMarker(str(marker)))]
    return pickle.dumps(refs, protocol=2)


def test_the_payload_is_real(tmp_path):
    """Guard: plain pickle.loads really would run the payload."""
    marker = tmp_path / 'ran'
    data = _malicious_refs(marker)
    assert any(op.name in ('GLOBAL', 'STACK_GLOBAL')
               for op, _, _ in pickletools.genops(data))
    pickle.loads(data)
    assert marker.exists()


@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
def test_malicious_refs_file_is_refused_and_runs_nothing(tmp_path, protocol):
    marker = tmp_path / 'ran'
    refs = [dict(ref_id=1, payload=_WritesMarker(str(marker)))]
    path = tmp_path / 'refs(unc).p'
    path.write_bytes(pickle.dumps(refs, protocol=protocol))
    with pytest.raises(UnsafePickleError) as info:
        load_refs(str(path))
    message = str(info.value)
    assert str(path) in message and 'system' in message
    assert not marker.exists()


def test_dataset_refuses_malicious_refs(tmp_path):
    marker = tmp_path / 'ran'
    (tmp_path / 'refs(unc).p').write_bytes(_malicious_refs(marker))
    with pytest.raises(UnsafePickleError, match=r'refs\(unc\)\.p'):
        RefCOCODataset(data_root=str(tmp_path), split='train')
    assert not marker.exists()


def test_non_plain_objects_without_globals_are_refused(tmp_path):
    # Protocol 4 builds sets with opcodes alone; still not REFER data.
    data = pickle.dumps([{'ref_id': 1, 'tags': {1, 2}}], protocol=4)
    with pytest.raises(UnsafePickleError, match='set'):
        load_plain_pickle(data, source='set.p')


def test_plain_refs_load_across_protocols(tmp_path):
    refs = [dict(ref_id=7, ann_id=3, image_id=2, split='testA',
                 sentences=[dict(sent_id=1, raw='left man', tokens=['left']),
                            dict(sent_id=2, raw='caf\u00e9 table')],
                 bbox=(1.5, 2.0, 3, 4), flag=True, none=None, big=2**70)]
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f'refs{protocol}.p'
        path.write_bytes(pickle.dumps(refs, protocol=protocol))
        assert load_refs(str(path)) == refs


def test_python2_byte_strings_decode_as_text():
    # A Python 2 pickle of {'sent': 'left man'} (protocol 2, str = bytes).
    data = b'\x80\x02]q\x00}q\x01U\x04sentq\x02U\x08left manq\x03sa.'
    assert load_plain_pickle(data) == [{'sent': 'left man'}]


def test_bad_layout_and_missing_file(tmp_path):
    path = tmp_path / 'refs(umd).p'
    path.write_bytes(pickle.dumps({'not': 'a list'}))
    with pytest.raises(ValueError, match='list of refs'):
        load_refs(str(path))
    path.write_bytes(pickle.dumps([dict(ref_id=5, split='val')]))
    with pytest.raises(ValueError, match=r"ref_id=5.*'ann_id'"):
        load_refs(str(path))
    path.write_bytes(b'\x80\x02]q\x00')  # truncated
    with pytest.raises(pickle.UnpicklingError, match=r'refs\(umd\)\.p'):
        load_refs(str(path))
    with pytest.raises(FileNotFoundError, match='nowhere.p'):
        load_refs(str(tmp_path / 'nowhere.p'))


@pytest.mark.parametrize('changes, message', [
    (dict(sentences={'sent_id': 1, 'raw': 'x'}),
     r"ref #0 \(ref_id=5\): 'sentences' is \{.*\} of type dict, expected list"),
    (dict(split=['train']), r"'split' is \['train'\] of type list, expected str"),
    (dict(ref_id='5'), r"ref #0: 'ref_id' is '5' of type str, expected int"),
    (dict(ann_id=[3]), r"'ann_id' is \[3\] of type list, expected int"),
    (dict(sentences=[dict(sent_id=1, raw='x'), 'the cat']),
     'sentence #1 is a str, expected a dict'),
    (dict(sentences=[dict(sent_id=[1], raw='x')]), r'sentence #0 has sent_id \[1\], expected'),
])
def test_fields_of_the_wrong_type_are_named(tmp_path, changes, message):
    ref = dict(ref_id=5, ann_id=3, image_id=2, split='val',
               sentences=[dict(sent_id=1, raw='left man')])
    ref.update(changes)
    path = tmp_path / 'refs(unc).p'
    path.write_bytes(pickle.dumps([ref], protocol=2))
    with pytest.raises(ValueError, match=message) as error:
        load_refs(str(path))
    assert str(error.value).startswith(repr(str(path)))


def test_an_empty_refs_list_is_refused(tmp_path):
    path = tmp_path / 'refs(unc).p'
    path.write_bytes(pickle.dumps([], protocol=2))
    with pytest.raises(ValueError, match='holds an empty list: no refs'):
        load_refs(str(path))
