"""A guard that raises on every operation that would make the host wait for a GPU (shared by the
efficiency and EMA tests)."""
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


class HostSyncError(RuntimeError):
    """An operation that makes the host wait for the device."""


class ForbidHostSync(TorchDispatchMode):
    """Raise on every aten op that would synchronise the host with a GPU.

    On CPU no op waits, so the test looks for the ops that *would* wait on a GPU: reading a
    value (``.item()``, ``bool()``, ``float()``, ``int()`` of a tensor all end in
    ``_local_scalar_dense``; ``is_nonzero``, ``equal``) and ops whose output shape depends on the
    data (``nonzero``, ``masked_select``, ``unique``, tensor ``repeat_interleave``,
    ``bincount``, and indexing with a boolean mask, which runs ``nonzero`` inside ``index``).
    What it cannot see: a tensor built on the host and copied to the GPU (e.g. an index from
    ``torch.arange`` without ``device=``); those were audited by reading the code, and on a GPU
    the test also runs under ``torch.cuda.set_sync_debug_mode('error')``.
    """

    FORBIDDEN = {
        aten._local_scalar_dense, aten.is_nonzero, aten.equal, aten.nonzero,
        aten.masked_select, aten._unique, aten._unique2, aten.unique_dim,
        aten.unique_consecutive, aten.bincount
    }

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        if packet in self.FORBIDDEN or func is aten.repeat_interleave.Tensor:
            raise HostSyncError(f'{func} synchronises with the device')
        if packet in (aten.index, aten.index_put, aten._index_put_impl_) and any(
                i is not None and i.dtype in (torch.bool, torch.uint8) for i in args[1]):
            raise HostSyncError(f'{func} with a boolean mask has a data-dependent shape')
        return func(*args, **kwargs)


@contextmanager
def forbid_host_sync(monkeypatch):
    """``ForbidHostSync`` plus the tensor methods that copy to the host without an aten op."""
    def refuse(name):
        def method(*args, **kwargs):
            raise HostSyncError(f'Tensor.{name} copies to the host')
        return method

    with monkeypatch.context() as patch:
        for name in ('tolist', 'numpy', 'cpu'):
            patch.setattr(torch.Tensor, name, refuse(name))
        with ForbidHostSync():
            yield
