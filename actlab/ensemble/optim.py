"""Adam and SGD with momentum for stacked parameters, one learning rate per member."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class StackedOptimizer:
    """Adam or SGD over stacked parameters, with one learning rate per member (leading dim).

    ``lrs`` may be on the CPU whatever the parameters' device (``train_ensemble`` gives
    them there): they are moved to the parameters' device, and read where they are.

    On the CPU and on CUDA the update is PyTorch's fused kernel (``torch._fused_adam_``,
    ``torch._fused_sgd_``: one pass over each tensor, the whole arithmetic of the step
    in it), called once per distinct learning rate on the runs of members that share
    it; elsewhere (and when ``fused=False``) it is a few ``torch._foreach_*`` calls over
    all stacked tensors with the per-member learning rates broadcast. Both follow
    ``torch.optim``'s update formulas step for step.
    """

    def __init__(
        self,
        params: list[nn.Parameter],
        lrs: torch.Tensor,
        kind: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.0,
        fused: bool | None = None,
    ) -> None:
        if kind not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {kind!r}; use 'adam' or 'sgd'")
        if lrs.dim() != 1 or any(p.shape[0] != lrs.shape[0] for p in params):
            raise ValueError("lrs needs one learning rate per member (the leading dim)")
        self.params, self.kind = params, kind
        device = params[0].device if params else torch.device("cpu")
        on_device = lrs.to(device)
        self.lrs = [on_device.view(-1, *([1] * (p.dim() - 1))) for p in params]
        self.betas, self.eps, self.momentum = betas, eps, momentum
        self.t = 0
        self.state: list[list[torch.Tensor]] = [[] for _ in params]
        self.fused = device.type in ("cpu", "cuda") if fused is None else fused
        # Runs of consecutive members with one learning rate, gathered per rate (read on
        # the host: the learning rates may be given there, with the parameters elsewhere).
        self.lr_runs: dict[float, list[tuple[int, int]]] = {}
        host = lrs.detach().cpu().tolist()
        for lr, group in itertools.groupby(enumerate(host), key=lambda t: t[1]):
            idx = [i for i, _ in group]
            self.lr_runs.setdefault(float(lr), []).append((idx[0], idx[-1] + 1))
        self._step_t = torch.zeros((), dtype=torch.float32, device=device)

    def _views(
        self, tensors: list[torch.Tensor], runs: list[tuple[int, int]]
    ) -> list[torch.Tensor]:
        if len(runs) == 1 and runs[0] == (0, tensors[0].shape[0]):
            return tensors
        return [t[s:e] for t in tensors for s, e in runs]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise RuntimeError("every stacked parameter needs a gradient before step()")
        grads = [p.grad for p in params]
        if self.kind == "adam" and not self.state[0]:
            for st, p in zip(self.state, params, strict=True):
                st += [torch.zeros_like(p), torch.zeros_like(p)]
        if self.kind == "sgd" and self.momentum and not self.state[0]:
            first = True
            for st, p in zip(self.state, params, strict=True):
                st.append(torch.empty_like(p))
        else:
            first = False
        if self.fused:
            self._fused_step(params, grads, first)
        else:
            self._foreach_step(params, grads, first)

    def _fused_step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], first: bool
    ) -> None:
        self._step_t.fill_(self.t)
        b1, b2 = self.betas
        for lr, runs in self.lr_runs.items():
            ps, gs = self._views(params, runs), self._views(grads, runs)
            if self.kind == "adam":
                m = self._views([st[0] for st in self.state], runs)
                v = self._views([st[1] for st in self.state], runs)
                torch._fused_adam_(
                    ps, gs, m, v, [], [self._step_t] * len(ps), lr=lr, beta1=b1, beta2=b2,
                    weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False,
                )  # fmt: skip
            else:
                bufs = self._views([st[0] for st in self.state], runs) if self.momentum else []
                torch._fused_sgd_(
                    ps, gs, bufs, weight_decay=0.0, momentum=self.momentum, lr=lr,
                    dampening=0.0, nesterov=False, maximize=False, is_first_step=first,
                )  # fmt: skip

    def _foreach_step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], first: bool
    ) -> None:
        # One foreach call per arithmetic step over all stacked tensors instead of a
        # handful of calls per tensor; the per-member learning rates broadcast.
        if self.kind == "sgd":
            if self.momentum:
                bufs = [st[0] for st in self.state]
                if first:
                    torch._foreach_copy_(bufs, grads)
                else:
                    torch._foreach_mul_(bufs, self.momentum)
                    torch._foreach_add_(bufs, grads)
                grads = bufs
            torch._foreach_sub_(params, torch._foreach_mul(grads, self.lrs))
            return
        b1, b2 = self.betas
        m = [st[0] for st in self.state]
        v = [st[1] for st in self.state]
        # Same arithmetic as torch.optim.Adam's update.
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        bc1 = 1 - b1**self.t
        bc2_sqrt = math.sqrt(1 - b2**self.t)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, self.lr_over_bc(bc1))
        torch._foreach_sub_(params, update)

    def lr_over_bc(self, bc1: float) -> list[torch.Tensor]:
        """Each parameter's per-member learning rate divided by Adam's bias correction."""
        return [lr / bc1 for lr in self.lrs]
