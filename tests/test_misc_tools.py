"""tools/misc/print_config.py and tools/misc/publish_model.py."""
import hashlib

import pytest
import torch
from hostile_files import mmengine_checkpoint, write_checkpoint, write_file
from mmengine.config import Config
from tool_loader import load_tool

from dit_sam_mm.checkpoint import load_checkpoint_file
from dit_sam_mm.utils.cli import run_main

print_config = load_tool('tools/misc/print_config.py')
publish_model = load_tool('tools/misc/publish_model.py')
CONFIG = 'configs/synthref/ldit_tiny_synthref.py'


def one_line_error(main, argv, prog, capsys):
    """The stderr of a tool whose main is run as its command line runs it (exit status 1)."""
    assert run_main(lambda: main(argv), prog) == 1
    return capsys.readouterr().err


def test_print_config_merges_bases_and_options_and_saves(repo_root, tmp_path, capsys):
    saved = tmp_path / 'merged.py'
    argv = [str(repo_root / CONFIG), '--cfg-options', 'train_dataloader.batch_size=3',
            '--save-path', str(saved)]
    assert print_config.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith('Config:\n')
    merged = Config.fromfile(str(saved))
    assert merged.train_dataloader.batch_size == 3
    assert merged.model.type == 'DITSAM'  # from the _base_ files
    assert merged.pretty_text in printed


def test_print_config_names_a_missing_config(tmp_path, capsys):
    missing = tmp_path / 'nope.py'
    assert one_line_error(print_config.main, [str(missing)], 'print_config.py', capsys) == \
        f'print_config.py: error: config file not found: {missing}\n'


def test_publish_keeps_weights_and_meta_and_names_the_file_by_its_hash(tmp_path, capsys):
    checkpoint = mmengine_checkpoint()  # meta, state_dict, optimizer, message_hub
    checkpoint['param_schedulers'] = [dict(base_lrs=[1e-4], last_epoch=3)]
    source = write_file(checkpoint, tmp_path / 'epoch_40.pth')
    out = tmp_path / 'published' / 'ldit.pth'
    assert publish_model.main([str(source), str(out)]) == 0

    [published] = (tmp_path / 'published').iterdir()
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.name == f'ldit-{digest[:8]}.pth'
    assert not out.exists()
    assert capsys.readouterr().out.splitlines() == [
        'dropped: message_hub, optimizer, param_schedulers',
        f'published {source} as {published}']
    content = load_checkpoint_file(str(published))
    assert set(content) == {'meta', 'state_dict'}
    assert content['meta'] == checkpoint['meta']
    assert content['state_dict'].keys() == checkpoint['state_dict'].keys()
    for key, value in checkpoint['state_dict'].items():
        assert torch.equal(content['state_dict'][key], value)


@pytest.mark.parametrize('case', ['out exists', 'no state_dict', 'hostile'])
def test_publish_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys, case):
    folder = tmp_path / 'out'
    folder.mkdir()
    out = folder / 'model.pth'
    sentinel = tmp_path / 'ran'
    if case == 'out exists':
        source = write_file(mmengine_checkpoint(), tmp_path / 'in.pth')
        out.write_bytes(b'keep me')
        expected = f'OUT_FILE {out} exists; choose a name that does not'
    elif case == 'no state_dict':
        source = write_file({'weight': torch.ones(2)}, tmp_path / 'in.pth')
        expected = f'{source}: not a checkpoint saved by MMEngine (no state_dict)'
    else:
        source = write_checkpoint(tmp_path / 'in.pth', sentinel)
        expected = f'{source}: refused to read this checkpoint'
    error = one_line_error(publish_model.main, [str(source), str(out)], 'publish_model.py',
                           capsys)
    assert error.startswith(f'publish_model.py: error: {expected}') and error.count('\n') == 1
    assert not sentinel.exists()
    assert [p.name for p in folder.iterdir()] == (['model.pth'] if case == 'out exists' else [])
    if case == 'out exists':
        assert out.read_bytes() == b'keep me'
