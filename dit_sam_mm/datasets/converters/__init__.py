"""Converters from common annotation layouts into the custom JSON Lines format.

Each returns ``{split: [record, ...]}``; :func:`~dit_sam_mm.datasets.custom_writer.write_custom_splits`
checks and writes them (``tools/dataset_converters/custom_refer.py`` is the command line).
"""
from .coco import convert_coco
from .folder import convert_folder
from .labelme import convert_labelme
from .predictions import convert_predictions

__all__ = ['convert_coco', 'convert_folder', 'convert_labelme', 'convert_predictions']
