"""A toy regression model and an MMEngine runner around it, for fast runner-level tests."""
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyData(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, idx: int) -> dict:
        x = torch.full((2,), float(idx))
        return dict(inputs=x, target=x.sum().reshape(1))


class ToyRegressor(BaseModel):
    """y = w x; ``nan_after`` makes the loss NaN from that forward call on."""

    def __init__(self, nan_after: int = -1) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.nan_after = nan_after
        self.calls = 0

    def forward(self, inputs, target, mode='tensor'):
        pred = self.linear(inputs)
        if mode != 'loss':
            return pred
        self.calls += 1
        loss = ((pred - target) ** 2).mean()
        if 0 <= self.nan_after < self.calls:
            loss = loss * float('nan')
        return dict(loss=loss)


def make_runner(work_dir, model, max_epochs=2, resume=False, interval=50, runtime_info=None,
                optim_wrapper=None, custom_hooks=None, compile=None):
    """An MMEngine runner of ``model`` on ``ToyData`` (4 iterations an epoch) with a checkpoint
    every epoch, logging every 3 iterations and ``InvalidLossStopHook`` every ``interval``;
    ``compile`` is MMEngine's ``compile`` setting of the training step."""
    hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1),
                 logger=dict(type='LoggerHook', interval=3),
                 invalid_loss=dict(type='InvalidLossStopHook', interval=interval))
    if runtime_info is not None:
        hooks['runtime_info'] = runtime_info
    return Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=optim_wrapper or dict(optimizer=dict(type='SGD', lr=1e-3)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=hooks,
        custom_hooks=custom_hooks,
        resume=resume,
        randomness=dict(seed=0),
        cfg=dict(compile=compile),
        default_scope='mmseg',
        experiment_name=f'toy_{work_dir.name}_{int(resume)}')
