"""Leakage check: evaluation images that a training dataset of a mixed config also holds."""
import logging

from mmengine.config import Config
from tool_loader import load_tool

from custom_fixture import custom_records, write_custom_folder
from dit_sam_mm.datasets.custom_writer import make_record
from dit_sam_mm.datasets.leakage import find_leaks, warn_about_leaks


def mixed_config(refer_root, custom_root):
    refer = dict(type='RefCOCODataset', data_root=str(refer_root),
                 data_prefix=dict(img_path='images/'))
    custom = dict(type='CustomReferDataset', data_root=str(custom_root),
                  data_prefix=dict(img_path=str(refer_root / 'images')))
    return Config(dict(
        train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(**refer, split='train'),
            dict(type='RepeatDataset', times=2, dataset=dict(**custom, split='train'))])),
        val_dataloader=dict(dataset=dict(**refer, split='val')),
        test_dataloader=dict(dataset=dict(**refer, split=['testA', 'testB']))))


def test_leaks_name_the_images_and_datasets(refer_root, tmp_path):
    # The fixture's RefCOCO train holds images 1 and 3 (3 is also testB's); the custom train set
    # holds image 2, RefCOCO's val and testA image.
    splits = custom_records(refer_root)
    custom_root = write_custom_folder(tmp_path, dict(train=splits['val']))
    leaks = find_leaks(mixed_config(refer_root, custom_root))
    assert [leak.image.rsplit('/', 1)[1] for leak in leaks] == [
        'fixture_000002.jpg', 'fixture_000003.jpg']
    image2, image3 = leaks
    assert [name.split(':')[0] for name in image2.evaluated_in] == [
        'val_dataloader', 'test_dataloader']
    assert image2.trained_in == [f'train_dataloader: CustomReferDataset {custom_root} train']
    assert image3.trained_in[0].startswith('train_dataloader: RefCOCODataset ')
    assert image3.evaluated_in[0].endswith("['testA', 'testB']")


def test_warning_at_start_up_only_for_leaks(refer_root, tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr('dit_sam_mm.datasets.leakage.print_log',
                        lambda message, **kwargs: logged.append((message, kwargs['level'])))
    custom_root = write_custom_folder(tmp_path, dict(train=[make_record(
        1, 'fixture_000001.jpg', 40, 30, ['x'], [dict(polygons=[[0, 0, 5, 0, 5, 5]])])]))
    cfg = mixed_config(refer_root, custom_root)
    cfg.train_dataloader.dataset.datasets.pop(0)  # only the custom set (image 1) trains
    assert warn_about_leaks(cfg) == [] and logged == []
    cfg = mixed_config(refer_root, custom_root)  # RefCOCO train holds testB's image 3
    assert len(warn_about_leaks(cfg)) == 1
    (message, level), = logged
    assert level == logging.WARNING
    assert message.startswith('1 evaluation image(s) are also training images')
    assert 'fixture_000003.jpg' in message and 'check_leakage.py CONFIG' in message


def test_tool_lists_the_leaks(refer_root, tmp_path, capsys):
    config = tmp_path / 'mix.py'
    config.write_text(mixed_config(refer_root, write_custom_folder(
        tmp_path, dict(train=custom_records(refer_root)['val']))).pretty_text)
    tool = load_tool('tools/analysis_tools/check_leakage.py')
    status = tool.main([str(config), '--list', '--out', str(tmp_path / 'leaks.txt')])
    out = capsys.readouterr().out
    assert status == 1
    assert '1 image(s) of [val_dataloader: RefCOCODataset' in out
    assert out.splitlines()[-1] == '2 evaluation image(s) are also training images'
    assert [p.rsplit('/', 1)[1] for p in (tmp_path / 'leaks.txt').read_text().split()] == [
        'fixture_000002.jpg', 'fixture_000003.jpg']
