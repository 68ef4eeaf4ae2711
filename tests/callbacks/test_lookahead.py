"""The scheduled lookahead callback: the same weights as the recipe's loop written by hand."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from trueval.callbacks.lookahead import Lookahead
from trueval.core.errors import UserError

EPOCHS, BATCHES, BATCH = 2, 5, 8


def _data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCHES * BATCH, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(len(x), generator=g)
    return [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH)]


def _net() -> nn.Module:
    torch.manual_seed(0)
    # BatchNorm: its running statistics (float buffers) are averaged too
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 1))


class _Module(pl.LightningModule):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(1), y)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.5)


def _state(net: nn.Module) -> list[torch.Tensor]:
    return [p.data for p in net.parameters()] + [b for b in net.buffers() if b.is_floating_point()]


def _by_hand(every: int, decay_per_step: float, power: float) -> nn.Module:
    """The recipe's loop: SGD steps, and every ``every`` steps the lookahead update."""
    net, data = _net(), _data()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.5)
    slow, last, step = None, 0, 0
    for epoch in range(EPOCHS):
        for b, (x, y) in enumerate(data):
            opt.zero_grad()
            nn.functional.mse_loss(net(x).squeeze(1), y).backward()
            opt.step()
            step += 1
            progress = (epoch + (b + 1) / BATCHES) / EPOCHS
            if step - last < every and progress < 1:
                continue
            if slow is None:
                slow = [t.clone() for t in _state(net)]
            decay = 1.0 if progress >= 1 else decay_per_step ** (step - last) * progress**power
            last = step
            with torch.no_grad():
                for s, t in zip(slow, _state(net)):
                    s.copy_(t + (s - t) * decay)
                    t.copy_(s)
    return net


def _fit(callbacks: list[pl.Callback]) -> nn.Module:
    module = _Module(_net())
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", callbacks=callbacks, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    x, y = (torch.cat(parts) for parts in zip(*_data()))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    trainer.fit(module, train_dataloaders=loader)
    return module.net


def test_lookahead_takes_the_recipes_steps():
    callback = Lookahead(every_n_steps=3, decay_per_step=0.9, power=1.0)
    trained = _fit([callback])
    expected = _by_hand(3, 0.9, 1.0)
    plain = _by_hand(10**6, 0.0, 1.0)  # only the final update, which with decay 1 changes nothing new
    assert callback.updates == 4  # steps 3, 6, 9 and the last (10)
    for got, want in zip(_state(trained), _state(expected)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # it did something: the weights differ from a run without the pulls
    assert any(not torch.allclose(a, b) for a, b in zip(_state(trained), _state(plain)))


def test_lookahead_state_round_trip():
    callback = Lookahead(every_n_steps=2)
    _fit([callback])
    restored = Lookahead(every_n_steps=2)
    restored.load_state_dict(copy.deepcopy(callback.state_dict()))
    assert restored._last_step == callback._last_step == EPOCHS * BATCHES
    assert restored._restored is not None and len(restored._restored) == len(callback._slow)
    for a, b in zip(restored._restored, callback._slow):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kwargs, key", [({"every_n_steps": 0}, "every_n_steps"),
                                         ({"decay_per_step": 1.5}, "decay_per_step"),
                                         ({"power": -1.0}, "power")])
def test_lookahead_refuses_bad_settings(kwargs, key):
    with pytest.raises(UserError, match=key):
        Lookahead(**kwargs)
