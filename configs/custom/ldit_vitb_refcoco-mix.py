# L-DIT, SAM ViT-B, trained on RefCOCO + RefCOCO+ + RefCOCOg (umd) + your own data (data/custom,
# docs/en/custom_data.md) at once through MMEngine's ConcatDataset; validated and tested on
# RefCOCO as configs/dit/ldit_vitb_refcoco.py. RefCOCOg-umd's train split holds images of
# RefCOCO's val and test splits: tools/train.py warns at start-up, and
#   python tools/analysis_tools/check_leakage.py configs/custom/ldit_vitb_refcoco-mix.py --list
# lists them (docs/en/custom_data.md, "Mixing datasets").
#   python tools/train.py configs/custom/ldit_vitb_refcoco-mix.py
_base_ = ['../dit/ldit_vitb_refcoco.py']
refer = dict(type='RefCOCODataset', data_root='data', data_prefix=dict(img_path='coco/train2014'),
             split='train', sample_mode='ref', pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='ConcatDataset',
    datasets=[
        dict(**refer, ann_file='refcoco/instances.json', split_file='refcoco/refs(unc).p'),
        dict(**refer, ann_file='refcoco+/instances.json', split_file='refcoco+/refs(unc).p'),
        dict(**refer, ann_file='refcocog/instances.json', split_file='refcocog/refs(umd).p'),
        dict(type='CustomReferDataset', data_root='data/custom', ann_file='{split}.jsonl',
             data_prefix=dict(img_path=''), split='train', sample_mode='ref',
             pipeline={{_base_.train_pipeline}}),
    ]))
