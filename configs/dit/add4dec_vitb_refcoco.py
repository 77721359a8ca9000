# Paper Table 1, "Add 4 dec layers": the Default baseline with a deeper two-way transformer
# (2 + 4 layers) in the mask decoder; the extra layers start from random weights.
_base_ = ['./add2dec_vitb_refcoco.py']
model = dict(decode_head=dict(decoder_depth=6))
