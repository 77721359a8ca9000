"""Text injections of the DIT paper's Table 4, registered in ``mmseg.registry.MODELS``.

Load them next to the plugin with ``custom_imports = dict(imports=['dit_sam_mm',
'projects.text_injection_ablation.injections'], allow_failed_imports=False)`` and select one with
``model.backbone.injection=dict(type=...)``.
"""
from .cross_attention import CrossAttentionTextInjection
from .cross_attention_ffn import CrossAttentionFFNTextInjection

__all__ = ['CrossAttentionTextInjection', 'CrossAttentionFFNTextInjection']
