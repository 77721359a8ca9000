"""`import dit_sam_mm` registers every component into MMSegmentation's registries."""
import subprocess
import sys

import pytest
from mmseg import registry

import dit_sam_mm

REGISTERED = {
    'MODELS': ['DITSAMViT', 'LinearTextInjection', 'BertNeck', 'SAMDecoderHead', 'DITSAM',
               'MaskBCELoss', 'ReferSegDataPreProcessor', 'ForeachEMA'],
    'DATASETS': ['RefCOCODataset', 'GRefCOCODataset'],
    'TRANSFORMS': ['LoadReferAnnotations', 'ReferRandomFlip', 'TokenizeText', 'PackReferSegInputs',
                   'ReferPad', 'RandomGaussianBlur'],
    'METRICS': ['ReferSegMetric', 'GRESMetric'],
    'HOOKS': ['InvalidLossStopHook', 'EpochSeedHook'],
    'VISUALIZERS': ['ReferSegLocalVisualizer'],
    'OPTIM_WRAPPERS': ['BF16OptimWrapper', 'DeferredGradNormOptimWrapper'],
}


@pytest.mark.parametrize('registry_name, names', REGISTERED.items())
def test_components_are_in_mmseg_registries(registry_name, names):
    mmseg_registry = getattr(registry, registry_name)
    for name in names:
        assert mmseg_registry.get(name) is not None, f'{name} not in mmseg {registry_name}'
        # registered in mmseg's scope itself, not only reachable through a parent registry
        assert name in mmseg_registry.module_dict, name


def test_version():
    assert dit_sam_mm.__version__ == '0.1.0'


def test_custom_imports_of_a_config_register_the_plugin(repo_root):
    """A fresh interpreter that only reads a config gets the components (custom_imports)."""
    code = ('from mmengine.config import Config; from mmseg.registry import MODELS; '
            "Config.fromfile('configs/dit/ldit_vitb_refcoco.py'); "
            "print(MODELS.get('DITSAM').__module__)")
    result = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'dit_sam_mm.models.segmentors.dit_sam'
