"""tools/analysis_tools/benchmark.py --mode data with a config the test writes."""
import json

import pytest
from tool_loader import load_tool

from dit_sam_mm.datasets.synthref import make_synthref

CONFIG = '''
default_scope = 'mmseg'
custom_imports = dict(imports=['dit_sam_mm'], allow_failed_imports=False)
data_root = {root!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReferAnnotations'),
    dict(type='RandomChoiceResize', scales=[(s, s) for s in (64, 96)],
         resize_type='Resize', keep_ratio=True),
    dict(type='ReferRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='TokenizeText', vocab_file=data_root + '/vocab.txt'),
    dict(type='PackReferSegInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='RefCOCODataset', data_root=data_root,
                 split='train', sample_mode='ref',
                 data_prefix=dict(img_path='images/'),
                 pipeline=train_pipeline))
'''


@pytest.fixture(scope='module')
def benchmark_tool():
    return load_tool('tools/analysis_tools/benchmark.py')


def test_data_mode_measures_the_train_pipeline(benchmark_tool, tmp_path,
                                               capsys):
    root = tmp_path / 'synthref'
    make_synthref(str(root), num_images=9, seed=1)
    config = tmp_path / 'bench_cfg.py'
    config.write_text(CONFIG.format(root=str(root)))
    out = tmp_path / 'bench.json'
    assert benchmark_tool.main([
        str(config), '--mode', 'data', '--num-workers', '0', '--iters', '4',
        '--warmup', '1', '--per-transform', '--json', str(out)
    ]) == 0
    result = json.loads(out.read_text())
    assert result['mode'] == 'data' and result['dataset'] == 'RefCOCODataset'
    assert result['num_workers'] == 0 and result['batch_size'] == 2
    assert result['samples'] == 8 and result['samples_per_s'] > 0
    assert result['samples_per_s_per_worker'] == result['samples_per_s']
    assert list(result['ms_per_transform']) == [
        '0:LoadImageFromFile', '1:LoadReferAnnotations',
        '2:RandomChoiceResize', '3:ReferRandomFlip',
        '4:PhotoMetricDistortion', '5:TokenizeText', '6:PackReferSegInputs'
    ]
    assert 'samples/s per core' in capsys.readouterr().out

    with pytest.raises(ValueError, match='--num-workers 0'):
        benchmark_tool.main([str(config), '--num-workers', '1',
                             '--per-transform', '--iters', '1'])
