"""tools/train.py and tools/test.py name every missing file of a config, and how to get it."""
import subprocess
import sys

import pytest
from mmengine.config import Config

from dit_sam_mm.utils.preflight import find_missing_files, raise_if_files_missing


def refcoco_cfg(repo_root):
    return Config.fromfile(str(repo_root / 'configs/dit/ldit_vitb_refcoco.py'))


def test_missing_weights_and_data_are_all_named(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = find_missing_files(refcoco_cfg(repo_root))
    paths = [m.path for m in missing]
    assert paths == [
        'data/pretrained/sam_vit_b_mmseg.pth', 'data/pretrained/bert-base-uncased',
        'data/refcoco/instances.json', 'data/refcoco/refs(unc).p', 'data/coco/train2014'
    ]
    assert 'sam2mmseg.py sam_vit_b_01ec64.pth' in missing[0].howto
    assert 'huggingface-cli download bert-base-uncased' in missing[1].howto


def test_nothing_reported_when_the_files_exist(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ('data/pretrained/bert-base-uncased', 'data/coco/train2014', 'data/refcoco'):
        (tmp_path / folder).mkdir(parents=True)
    for name in ('data/pretrained/sam_vit_b_mmseg.pth', 'data/refcoco/instances.json',
                 'data/refcoco/refs(unc).p'):
        (tmp_path / name).write_bytes(b'')
    cfg = refcoco_cfg(repo_root)
    assert find_missing_files(cfg, ['train_dataloader', 'val_dataloader', 'test_dataloader']) == []
    raise_if_files_missing(cfg, ['train_dataloader'], init_weights=True)


def test_testing_does_not_need_the_sam_weights(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = find_missing_files(refcoco_cfg(repo_root), ['test_dataloader'], init_weights=False)
    assert 'data/pretrained/sam_vit_b_mmseg.pth' not in [m.path for m in missing]


def test_hub_names_are_not_files(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = refcoco_cfg(repo_root)
    cfg.model.neck.pretrained = 'bert-base-uncased'
    assert 'bert-base-uncased' not in [m.path for m in find_missing_files(cfg)]


def test_train_tool_fails_at_start_naming_the_files(repo_root, tmp_path):
    result = subprocess.run(
        [sys.executable, str(repo_root / 'tools/train.py'),
         str(repo_root / 'configs/dit/ldit_vitb_refcoco.py')],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith('train.py: error: this config needs files that do not exist')
    assert 'Traceback' not in result.stderr
    assert 'data/refcoco/refs(unc).p' in result.stderr
    assert not (tmp_path / 'work_dirs').exists()


@pytest.mark.parametrize('arch, official', [('huge', 'sam_vit_h_4b8939.pth'),
                                            ('large', 'sam_vit_l_0b3195.pth')])
def test_the_advice_names_the_official_checkpoint_of_the_backbone(repo_root, tmp_path,
                                                                   monkeypatch, arch, official):
    monkeypatch.chdir(tmp_path)
    cfg = refcoco_cfg(repo_root)
    cfg.model.backbone.arch = arch
    assert official in find_missing_files(cfg)[0].howto


@pytest.mark.parametrize('config, command', [
    ('configs/synthref/ldit_tiny_synthref.py', 'make_synthref.py data/synthref'),
    ('configs/synthref/ldit_tiny_synthref-gres.py',
     'make_synthref.py data/synthref_gres --generalized'),
])
def test_missing_synthref_says_how_to_generate_it(repo_root, tmp_path, monkeypatch, config,
                                                  command):
    monkeypatch.chdir(tmp_path)
    missing = find_missing_files(Config.fromfile(str(repo_root / config)))
    assert missing and all(m.howto.endswith(command) for m in missing)


def test_the_grefcoco_configs_name_their_files(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(str(repo_root / 'configs/dit/ldit_vitb_grefcoco.py'))
    paths = [m.path for m in find_missing_files(cfg)]
    assert 'data/grefcoco/instances.json' in paths and 'data/grefcoco/grefs(unc).json' in paths


def test_run_from_another_folder_says_where_the_relative_paths_are(tmp_path, monkeypatch):
    project = tmp_path / 'project'
    (project / 'configs').mkdir(parents=True)
    (project / 'data' / 'mine' / 'images').mkdir(parents=True)
    (project / 'data' / 'mine' / 'train.jsonl').write_text('')
    config = project / 'configs' / 'mine.py'
    config.write_text("train_dataloader = dict(dataset=dict(type='CustomReferDataset', "
                      "data_root='data/mine', ann_file='{split}.jsonl', split='train', "
                      "data_prefix=dict(img_path='images')))\n")
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(FileNotFoundError) as info:
        raise_if_files_missing(Config.fromfile(str(config)), ['train_dataloader'], False)
    assert (f'relative paths are read from the current folder {elsewhere}, but they exist '
            f'under {project}: run from there') in str(info.value)
    monkeypatch.chdir(project)
    raise_if_files_missing(Config.fromfile(str(config)), ['train_dataloader'], False)
