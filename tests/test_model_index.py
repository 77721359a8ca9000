"""model-index.yml and configs/dit/metafile.yaml, the model zoo as mim and modelindex read it.

``model-index`` is not a requirement, so the files are read with PyYAML, following its
``Import`` field as modelindex does. Every config of configs/dit/ must be listed and every listed
config must exist; the numbers are the paper's and must agree with configs/dit/README.md's
tables.
"""
import re
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
SPLIT_COLUMNS = {'val': 0, 'testA': 1, 'test': 1, 'testB': 2}


def load_models():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    models, collections = [], []
    for name in index['Import']:
        metafile = yaml.safe_load((ROOT / name).read_text())
        models += metafile['Models']
        collections += metafile['Collections']
    return models, collections


MODELS, COLLECTIONS = load_models()


def readme_oious():
    """{config name: [val, testA / test, testB] oIoU} from the tables of configs/dit/README.md
    (a row's last config link names it; '-' where the table has no number)."""
    rows = {}
    for line in (ROOT / 'configs/dit/README.md').read_text().splitlines():
        links = re.findall(r'\[([\w.+-]+)\.py\]\(\1\.py\)', line)
        numbers = re.findall(r'\| (\d+\.\d\d|-) ', line + ' ')
        if links and len(numbers) >= 2:
            rows[links[-1]] = numbers[-3:] if len(numbers) >= 3 else numbers + ['-']
    return rows


def test_every_config_of_configs_dit_is_listed_and_every_listed_config_exists():
    listed = [model['Config'] for model in MODELS]
    assert len(listed) == len(set(listed))
    on_disk = sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'configs/dit').glob('*.py'))
    assert sorted(listed) == on_disk
    assert all(model['Name'] == Path(model['Config']).stem for model in MODELS)


def test_models_have_the_fields_mim_reads():
    names = {collection['Name'] for collection in COLLECTIONS}
    for model in MODELS:
        assert model['In Collection'] in names
        assert {'Training Data', 'Architecture'} <= set(model['Metadata'])
        assert 'Weights' not in model  # no released file this repository can name
        for result in model.get('Results', []):
            assert result['Task'] == 'Referring Image Segmentation'
            assert result['Dataset'].split()[0] in ('RefCOCO', 'RefCOCO+', 'RefCOCOg')
            assert set(result['Metrics']) <= {'oIoU', 'mIoU', 'Pr@0.5', 'Pr@0.7', 'Pr@0.9'}
    for collection in COLLECTIONS:
        assert (ROOT / collection['README']).is_file()


@pytest.mark.parametrize('model', [m for m in MODELS if 'Results' in m],
                         ids=lambda model: model['Name'])
def test_results_are_the_papers_as_in_the_readme(model):
    assert 'the paper, Table' in model['Results Source']
    expected = readme_oious()[model['Name']]
    for result in model['Results']:
        split = result['Dataset'].split()[-1]
        assert f"{result['Metrics']['oIoU']:.2f}" == expected[SPLIT_COLUMNS[split]], split


ARCH_NAMES = dict(base='SAM ViT-B', large='SAM ViT-L', huge='SAM ViT-H')
METHOD_NAMES = dict(none='Default SAM', e2e='E-DIT', layerwise='L-DIT')


@pytest.mark.parametrize('model', MODELS, ids=lambda model: model['Name'])
def test_metadata_describes_the_config(model):
    cfg = Config.fromfile(str(ROOT / model['Config']))
    metadata = model['Metadata']
    backbone = cfg.model.backbone
    assert {ARCH_NAMES[backbone.arch], METHOD_NAMES[backbone.text_mode]} <= \
        set(metadata['Architecture'])
    techniques = metadata['Training Techniques']
    assert ('frozen image encoder' in techniques) == backbone.frozen
    assert ('frozen text encoder' in techniques) == cfg.model.neck.frozen
    assert metadata['Epochs'] == cfg.train_cfg.max_epochs
    assert metadata['Batch Size'] == 8 * cfg.train_dataloader.batch_size  # on 8 GPUs
