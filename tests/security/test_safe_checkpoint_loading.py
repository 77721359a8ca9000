"""No checkpoint file runs code when read: the shared loader, MMEngine's loader and torch's own.

Every hostile file of ``hostile_files`` (three payloads x three places x three formats) is first
proven hostile (unrestricted loading creates its sentinel, in a separate interpreter), then
refused by each reader with the file named, and its sentinel never appears.
"""
import itertools
import pickle
import shutil
from collections import Counter, OrderedDict

import numpy as np
import pytest
import torch
from hostile_files import (FORMATS, PAYLOADS, PLACES, assert_payload_runs_unrestricted, built,
                           mmengine_checkpoint, write_checkpoint, write_file)
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

import dit_sam_mm  # noqa: F401  (registers the safe local-file loader in MMEngine)
from dit_sam_mm.checkpoint import (CheckpointReadError, UnsafeCheckpointError, load_checkpoint_file,
                                   read_state_dict)

READERS = dict(
    load_checkpoint_file=load_checkpoint_file,
    mmengine=lambda path: _load_checkpoint(str(path), map_location='cpu'),
    read_state_dict=lambda path: read_state_dict(str(path)),
)


@pytest.fixture(scope='module')
def hostile_files(tmp_path_factory):
    """{(payload, place, format): (file, sentinel)}, each proven hostile."""
    root = tmp_path_factory.mktemp('hostile')
    files = {}
    for payload, place, fmt in itertools.product(PAYLOADS, PLACES, FORMATS):
        sentinel = root / f'ran_{payload}_{place}_{fmt}'
        path = write_checkpoint(root / f'{payload}_{place}_{fmt}.pth', sentinel, payload, place,
                                fmt)
        files[payload, place, fmt] = path, sentinel
    # One per payload and format is enough to show that placement does not disarm it.
    assert_payload_runs_unrestricted(*itertools.chain.from_iterable(
        files[payload, 'message_hub', fmt] for payload, fmt in itertools.product(PAYLOADS,
                                                                                 FORMATS)))
    return files


@pytest.mark.parametrize('reader', list(READERS))
def test_hostile_checkpoints_are_refused_and_run_nothing(hostile_files, reader):
    for (payload, place, fmt), (path, sentinel) in hostile_files.items():
        with pytest.raises(UnsafeCheckpointError) as info:
            READERS[reader](path)
        assert str(path) in str(info.value), (payload, place, fmt)
        assert 'Nothing in it was run' in str(info.value)
        assert not sentinel.exists(), (payload, place, fmt)


def test_plain_torch_load_stays_weights_only_after_import(hostile_files):
    """Importing dit_sam_mm allow-lists nothing process-wide: torch.load refuses as before."""
    for (path, sentinel) in hostile_files.values():
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
        assert not sentinel.exists()


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_honest_mmengine_checkpoint_loads_with_bookkeeping_rebuilt(tmp_path, fmt):
    path = write_file(mmengine_checkpoint(), tmp_path / 'ok.pth', fmt)
    checkpoint = load_checkpoint_file(path)
    assert torch.equal(checkpoint['state_dict']['weight'], torch.ones(2, 2))
    assert checkpoint['optimizer']['param_groups'][0]['betas'] == (0.9, 0.999)
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert type(buffer) is HistoryBuffer
    assert buffer.mean() == pytest.approx(0.375) and buffer.current() == 0.25
    hub = MessageHub.get_instance('safe_load_test')
    hub.load_state_dict(checkpoint['message_hub'])
    assert hub.get_scalar('train/loss').max() == 0.5
    assert hub.get_info('loss') == 0.25


def test_module_state_dict_metadata_survives(tmp_path):
    state_dict = torch.nn.Linear(2, 2).state_dict()
    checkpoint = load_checkpoint_file(write_file(dict(state_dict=state_dict), tmp_path / 'm.pth'))
    assert checkpoint['state_dict']._metadata == state_dict._metadata


def _buffer_state(**changes):
    state = dict(max_length=10, _log_history=np.zeros(2), _count_history=np.ones(2))
    state.update(changes)
    return state


# State no honest checkpoint has, built only from globals an MMEngine checkpoint holds.
SHAPES = dict(
    extra_field=built(HistoryBuffer, _buffer_state(__deepcopy__=np.dtype('f8'))),
    renamed_statistic=built(HistoryBuffer, _buffer_state(
        statistics_methods={'min': HistoryBuffer.max})),
    unknown_statistic=built(HistoryBuffer, _buffer_state(
        statistics_methods={'run': HistoryBuffer.min})),
    text_max_length=built(HistoryBuffer, _buffer_state(max_length='10')),
    object_history=built(HistoryBuffer, _buffer_state(
        _log_history=np.array([1, 'a'], dtype=object))),
    matrix_history=built(HistoryBuffer, _buffer_state(_log_history=np.zeros((2, 2)))),
    uneven_history=built(HistoryBuffer, _buffer_state(_count_history=np.ones(3))),
    object_array=np.array([1, 'a'], dtype=object),
    class_as_value=np.ndarray,
)


@pytest.mark.parametrize('reader', ['load_checkpoint_file', 'mmengine'])
@pytest.mark.parametrize('shape', list(SHAPES))
def test_allowed_globals_with_dishonest_state_are_refused(tmp_path, shape, reader):
    checkpoint = mmengine_checkpoint()
    checkpoint['message_hub']['log_scalars']['train/loss'] = SHAPES[shape]
    path = write_file(checkpoint, tmp_path / f'{shape}.pth')
    with pytest.raises(UnsafeCheckpointError, match=r"\['message_hub'\]") as info:
        READERS[reader](path)
    assert str(path) in str(info.value)


def test_ordered_dict_with_planted_attributes_is_refused(tmp_path):
    class PlantedOrderedDict(dict):
        def __reduce__(self):
            from collections import OrderedDict
            return (OrderedDict, (), dict(__deepcopy__=np.dtype('f8')), None, iter(self.items()))

    path = write_file(dict(state_dict=PlantedOrderedDict(w=torch.ones(1))), tmp_path / 'o.pth')
    with pytest.raises(UnsafeCheckpointError, match='OrderedDict with attributes'):
        load_checkpoint_file(path)


class _BadArguments:
    """Pickles as ``OrderedDict(1)``: an allowed global called with arguments that fail."""

    def __reduce__(self):
        return (OrderedDict, (1, ))


@pytest.mark.parametrize('content', [b'', b'not a checkpoint\n', 'truncated', 'truncated_legacy',
                                     'bad_arguments'])
def test_unreadable_files_name_the_file(tmp_path, content):
    path = tmp_path / 'broken.pth'
    if content in ('truncated', 'truncated_legacy'):
        write_file(mmengine_checkpoint(), path, 'legacy' if content == 'truncated_legacy' else 'zip')
        path.write_bytes(path.read_bytes()[:300])
    elif content == 'bad_arguments':
        write_file(dict(state_dict={}, meta=_BadArguments()), path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match='not a (readable )?PyTorch checkpoint') as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(tmp_path / 'nope.pth')


def test_plain_containers_come_back_as_they_were(tmp_path):
    content = dict(counts=Counter(a=3, b=1), pairs={(1, 2), (3, 4)},
                   raw=bytearray(b'xy'), shape=torch.Size([2, 3]), dtype=torch.float16)
    assert load_checkpoint_file(write_file(content, tmp_path / 'c.pth')) == content


@pytest.mark.parametrize('url', ['https://example.invalid/zoo/hostile.pth',
                                 'torchvision://resnet18'])
def test_urls_are_downloaded_and_read_safely(hostile_files, tmp_path, monkeypatch, url):
    """MMEngine's own URL loader unpickles without restriction; ours reads the download safely.
    ``torchvision://`` goes through the same loader (MMEngine calls it directly)."""
    path, sentinel = hostile_files['system', 'message_hub', 'zip']
    downloads = []

    def fake_download(address, destination, progress=True):
        downloads.append(address)
        shutil.copy(path, destination)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(UnsafeCheckpointError, match=str(tmp_path / 'hub' / 'checkpoints')):
        _load_checkpoint(url, map_location='cpu')
    assert len(downloads) == 1 and not sentinel.exists()
    honest = write_file(mmengine_checkpoint(), tmp_path / 'honest.pth')
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda address, destination, progress=True: shutil.copy(honest,
                                                                                destination))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub2'))
    checkpoint = _load_checkpoint('https://example.invalid/zoo/honest.pth', map_location='cpu')
    assert type(checkpoint['message_hub']['log_scalars']['train/loss']) is HistoryBuffer
