# E-DIT, SAM ViT-B, RefCOCO: runs an E-DIT checkpoint released with the authors' code as it was
# trained. text_mode='e2e' is the release's E-DIT: before block i > 0 the text slots get P_i of
# the text tokens block i - 1 produced. An E-DIT release holds the same keys as an L-DIT one
# (`visual_encoder.probs.{i}`), so the converter is the same and only this setting differs:
#   python tools/model_converters/dit_official2mmseg.py RELEASED.pth checkpoints/edit_official.pth
#   python tools/test.py configs/dit/edit_vitb_refcoco_official.py checkpoints/edit_official.pth
# Everything else (BERT's first layer, unmasked text padding, PIL resizing, centred padding, the
# release's post-processing and Pr@X convention, float32) as ldit_vitb_refcoco_official.py.
# ViT-B only: the converter folds a ViT-H release's `prob_text` (768 -> 1280) into every P_i,
# which is the L-DIT reading of that layout.
_base_ = ['./ldit_vitb_refcoco_official.py']
model = dict(backbone=dict(text_mode='e2e'))
