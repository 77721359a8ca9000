# L-DIT ViT-B on RefCOCO with the authors' released training recipe instead of the paper's:
# Adam betas (0.9, 0.98), grad-norm clip 0.15, cosine decay to 1e-6 and an EMA of the weights.
_base_ = [
    '../_base_/models/dit_vit-b_layerwise.py', '../_base_/datasets/refcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_released.py'
]
