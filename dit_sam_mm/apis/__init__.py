"""Using a trained model: inference on your own images and sentences, and its building blocks."""
from .inferencer import ReferSegInferencer, read_image
from .refer_result import ReferSegResult, TokenCounts
from .model_init import inference_pipeline_cfg, init_refer_model, load_config
from .onnx_export import MaskLogitsModel, export_onnx, preprocessing_spec

__all__ = [
    'ReferSegInferencer', 'ReferSegResult', 'TokenCounts', 'read_image', 'init_refer_model',
    'inference_pipeline_cfg', 'load_config', 'MaskLogitsModel', 'export_onnx', 'preprocessing_spec'
]
