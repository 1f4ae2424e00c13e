"""The reference model's training step with autograd's own kernels, called directly.

For `nn.Linear` + `CrossEntropyLoss`, autograd spends most of a step on its
bookkeeping, not on arithmetic: building the graph, then walking it back. This
step calls the very kernels that `loss.backward()` would call (addmm, log_softmax,
nll_loss and their backward functions, with autograd's argument orders and
layouts), so the loss and the gradients are bit for bit the same, in about half
the time on a CPU (benchmarks/).

`make_train_step` checks that claim on the machine at hand before trusting it: it
runs one step both ways on copies of the model and falls back to plain autograd
if anything differs or fails (another device, another torch).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_MEAN = 1  # aten's reduction code for 'mean'
_IGNORE = -100  # CrossEntropyLoss's default ignore_index


def autograd_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Step:
    """The reference loop's step: forward, CrossEntropyLoss, backward, optimizer.step()."""
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def direct_step(model: nn.Linear, optimizer: torch.optim.Optimizer) -> Step:
    """The same step with the backward kernels called directly (see the module docstring)."""
    weight, bias = model.weight, model.bias
    seed = torch.ones((), device=weight.device, dtype=weight.dtype)  # what backward() starts from

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            # F.linear on a 2-D input is addmm(bias, x, weight.t()).
            logits = torch.addmm(bias, x, weight.t())
            log_probs = torch.log_softmax(logits, 1)
            loss, total = torch.ops.aten.nll_loss_forward(log_probs, y, None, _MEAN, _IGNORE)
            grad = torch.ops.aten.nll_loss_backward(seed, log_probs, y, None, _MEAN, _IGNORE, total)
            grad = torch.ops.aten._log_softmax_backward_data(grad, log_probs, 1, log_probs.dtype)
            # addmm's backward for a column-major mat2 (weight.t()): grad.t() @ x, then
            # transposed back; the bias gradient is the broadcast summed away.
            weight.grad = grad.t().mm(x)
            bias.grad = grad.sum(0)
        optimizer.step()
        return loss

    return step


def make_train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> tuple[Step, str]:
    """The fastest step that gives autograd's exact numbers here, and its name.

    `x` and `y` are a sample batch for the check, which runs on copies: the real
    model and optimizer are not touched.
    """
    if not (isinstance(model, nn.Linear) and model.bias is not None and type(model) is nn.Linear):
        return autograd_step(model, optimizer), "autograd"
    try:
        results = []
        for make in (autograd_step, direct_step):
            m = copy.deepcopy(model)
            o = type(optimizer)(m.parameters(), **optimizer.defaults)
            # A deep copy: load_state_dict keeps the very tensors it is given, and
            # the check's steps would update a resumed run's moments in place.
            o.load_state_dict(copy.deepcopy(optimizer.state_dict()))
            step = make(m, o)
            losses = [step(x, y) for _ in range(2)]
            results.append((losses, m.weight.detach(), m.bias.detach()))
        (la, wa, ba), (ld, wd, bd) = results
        same = (
            all(torch.equal(a, d) for a, d in zip(la, ld, strict=True))
            and torch.equal(wa, wd)
            and torch.equal(ba, bd)
        )
    except Exception:  # a private kernel that changed: the plain path is always right
        same = False
    if same:
        return direct_step(model, optimizer), "direct"
    return autograd_step(model, optimizer), "autograd"
