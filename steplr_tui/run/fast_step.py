"""The reference model's training step with autograd's own kernels, called directly.

For `nn.Linear` + `CrossEntropyLoss`, autograd spends most of a step on its
bookkeeping, not on arithmetic: building the graph, then walking it back. This
step calls the very kernels that `loss.backward()` would call (addmm, log_softmax,
nll_loss and their backward functions, with autograd's argument orders and
layouts), so the loss and the gradients are bit for bit the same, in about half
the time on a CPU (benchmarks/).

The optimizer's update goes the same way for a fused Adam: after the first
`optimizer.step()`, the step calls the fused kernel that `step()` ends in, without
the Python layers around it (hooks, profiling, grouping tensors by device), which
cost more than the update itself.

`make_train_step` checks that claim on the machine at hand before trusting it: it
runs a few steps both ways on copies of the model and falls back to plain autograd
if anything differs or fails (another device, another torch).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.optim.optimizer as optim_module
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


Update = Callable[[torch.Tensor, torch.Tensor], None]


def fused_adam_update(
    optimizer: torch.optim.Optimizer, weight: torch.Tensor, bias: torch.Tensor
) -> Update | None:
    """`optimizer.step()` for a fused Adam over (weight, bias), given their gradients,
    as the kernel call that step() makes; None where that is not all step() does.

    On this 2-core CPU step() takes ~41 us, of which the kernel is ~12 us. The
    optimizer's state must exist (after a first step() or a loaded checkpoint).
    """
    groups = optimizer.param_groups
    if type(optimizer) is not torch.optim.Adam or len(groups) != 1:
        return None
    group = groups[0]
    if (
        not group["fused"]
        or any(group[flag] for flag in ("amsgrad", "maximize", "capturable", "differentiable"))
        or isinstance(group["lr"], torch.Tensor)
        or len(group["params"]) != 2
        or group["params"][0] is not weight
        or group["params"][1] is not bias
        or optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or getattr(optim_module, "_global_optimizer_pre_hooks", True)
        or getattr(optim_module, "_global_optimizer_post_hooks", True)
        or getattr(optimizer, "grad_scale", None) is not None
    ):
        return None
    kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
    state = optimizer.state
    params = [weight, bias]

    def update(weight_grad: torch.Tensor, bias_grad: torch.Tensor) -> None:
        # Looked up each step: a loaded checkpoint replaces the state tensors, and
        # the scheduler and live edits change the lr.
        w, b = state[weight], state[bias]
        steps = [w["step"], b["step"]]
        torch._foreach_add_(steps, 1)
        kernel(
            params,
            [weight_grad, bias_grad],
            [w["exp_avg"], b["exp_avg"]],
            [w["exp_avg_sq"], b["exp_avg_sq"]],
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    return update


def direct_step(model: nn.Linear, optimizer: torch.optim.Optimizer) -> Step:
    """The same step with the backward kernels called directly (see the module docstring)."""
    weight, bias = model.weight, model.bias
    seed = torch.ones((), device=weight.device, dtype=weight.dtype)  # what backward() starts from
    update = fused_adam_update(optimizer, weight, bias)
    # The first update goes through step(): it creates the optimizer's state, and
    # the scheduler checks that step() was called before its own first step.
    stepped = False

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal stepped
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
            if update is not None and stepped:
                # Under no_grad, as step() runs it: the update writes the weights in place.
                update(weight.grad, bias.grad)
                return loss
        optimizer.step()
        stepped = True
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
            losses = [step(x, y) for _ in range(3)]
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
