"""loss.name=focal: cross-entropy at gamma 0, easy examples down-weighted above, class weights as in CE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trueval.core.errors import UserError
from trueval.models.losses import check_loss, focal_loss


def test_focal_loss_reduces_to_cross_entropy_and_downweights_easy_examples() -> None:
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.0, 0.1], [0.0, 3.0, 0.0]])
    y = torch.tensor([0, 2, 0])
    w = torch.tensor([1.0, 2.0, 3.0])
    assert focal_loss(logits, y, gamma=0.0) == pytest.approx(F.cross_entropy(logits, y).item())
    assert focal_loss(logits, y, 0.0, w) == pytest.approx(F.cross_entropy(logits, y, weight=w).item())
    per = F.cross_entropy(logits, y, reduction="none")
    pt = torch.exp(-per)
    assert focal_loss(logits, y, 2.0) == pytest.approx(((1 - pt) ** 2 * per).mean().item())
    # the easy first example loses most of its weight
    assert (1 - pt[0]) ** 2 < 0.01 < 0.1 < (1 - pt[1]) ** 2
    with pytest.raises(UserError, match="loss.name"):
        check_loss("hinge", 2.0)
    with pytest.raises(UserError, match="loss.gamma"):
        check_loss("focal", -1)
