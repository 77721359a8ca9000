"""tools/analysis_tools/dataset_size.py: the RefCOCO-shaped synthetic folder and its measurement."""
import json

import pytest
from mmengine.dataset import BaseDataset
from tool_loader import load_tool

from dit_sam_mm.datasets import RefCOCODataset

tool = load_tool('tools/analysis_tools/dataset_size.py')


def test_the_synthetic_folder_has_the_requested_shape(tmp_path):
    tool.write_refer_folder(str(tmp_path), num_refs=7, num_sentences=20, num_images=3,
                            num_coords=10, seed=0)
    dataset = RefCOCODataset(data_root=str(tmp_path), split='train', sample_mode='sentence')
    assert dataset.num_refs == 7 and len(dataset) == 20
    refs = [BaseDataset.get_data_info(dataset, i) for i in range(dataset.num_refs)]
    assert sorted(len(ref['sentences']) for ref in refs) == [2] + [3] * 6
    assert all(len(ref['segmentation'][0]) == 10 for ref in refs)
    assert len({ref['image_id'] for ref in refs}) == 3
    with pytest.raises(ValueError, match='at least one sentence'):
        tool.write_refer_folder(str(tmp_path), 7, 6, 3, 10, 0)


def test_sizes_add_up_and_only_the_polygons_grow_with_their_coordinates(tmp_path, capsys):
    out = tmp_path / 'size.json'
    args = ['--refs', '30', '--sentences', '80', '--images', '10', '--json', str(out)]
    assert tool.main(args + ['--coords', '20']) == 0
    small = json.loads(out.read_text())
    assert small['refs'] == 30 and small['sentences'] == 80
    assert small['polygons_mib'] + small['other_mib'] == pytest.approx(small['pickled_mib'],
                                                                       abs=0.02)
    assert 30 * 20 * 9 <= small['polygons_bytes'] < small['pickled_bytes']
    assert 0 < small['data_bytes_mib'] <= small['pickled_mib']
    assert 'pickled_mib' in capsys.readouterr().out
    assert tool.main(args + ['--coords', '200']) == 0
    large = json.loads(out.read_text())
    assert large['polygons_bytes'] > 5 * small['polygons_bytes']
    assert large['other_bytes_per_ref'] == pytest.approx(small['other_bytes_per_ref'], abs=4)
