# Your own data in the custom JSON Lines format (docs/en/custom_data.md): data/custom/train.jsonl
# and val.jsonl (made by tools/dataset_converters/custom_refer.py), image paths relative to
# data/custom/. The RefCOCO pipelines (BERT-base tokenizer, 512x512 input) and ReferSegMetric;
# for several or no objects per sentence set generalized=True and use GRESMetric.
_base_ = ['./refcoco_unc.py']
dataset_type = 'CustomReferDataset'
data_root = 'data/custom'
custom = dict(type=dataset_type, data_root=data_root, ann_file='{split}.jsonl',
              data_prefix=dict(img_path=''), generalized=False)
train_dataloader = dict(dataset=dict(_delete_=True, **custom, split='train', sample_mode='ref',
                                     pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(_delete_=True, **custom, split='val', sample_mode='sentence',
                                   test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(dataset=dict(_delete_=True, **custom, split='val', sample_mode='sentence',
                                    test_mode=True, pipeline={{_base_.test_pipeline}}))
