# The walk-through of docs/en/custom_data.md: the tiny L-DIT trained on SynthRef
# (configs/synthref/ldit_tiny_synthref.py), fine-tuned for 5 epochs on data/custom_example, a
# dataset in the custom format converted from a folder of images, mask PNGs and sentences.txt
# that tools/dataset_converters/make_custom_example.py writes:
#   python tools/train.py configs/custom/ldit_tiny_custom-example_ft-synthref.py
_base_ = ['../synthref/ldit_tiny_synthref.py']
load_from = 'work_dirs/ldit_tiny_synthref/epoch_30.pth'
data_root = 'data/custom_example'
custom = dict(type='CustomReferDataset', data_root=data_root, ann_file='{split}.jsonl',
              data_prefix=dict(img_path=''))
train_dataloader = dict(dataset=dict(_delete_=True, **custom, split='train', sample_mode='ref',
                                     pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(_delete_=True, **custom, split='val', sample_mode='sentence',
                                   test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
max_epochs = 5
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=0, end=max_epochs,
         T_max=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
