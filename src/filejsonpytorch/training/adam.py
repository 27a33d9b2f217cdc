"""Adam, computed exactly as `torch.optim.Adam` computes it with its defaults (no weight
decay, no AMSGrad), with the same `state_dict` format, so that model files of either resume
with the other.

Why not torch's own: any `torch.optim` optimizer imports the TorchDynamo compiler on its
first use (its methods are wrapped to keep it out of compiled graphs), and on a laptop CPU
that import and its teardown at exit cost more than a second of every training run; the
networks here are never compiled. The arithmetic is torch's, operation for operation
(tests/test_adam.py checks the weights are equal after training, bit for bit).
"""

import torch

from ..errors import UsageError

#: torch.optim.Adam's other settings, at the defaults this class computes
FIXED_SETTINGS = {"weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                  "differentiable": False, "fused": None, "decoupled_weight_decay": False}


class Adam:
    """Adam over `params` (tensors that require grad), with torch's interface as the trainer
    and torch's gradient scaler use it: `zero_grad`, `step`, `param_groups` (one group; its
    "lr" may be changed between steps), `state_dict`, `load_state_dict`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr, "betas": betas, "eps": eps, **FIXED_SETTINGS}]
        self.state = {}  # parameter index -> {"step", "exp_avg", "exp_avg_sq"}

    def zero_grad(self):
        """Forgets the gradients (as torch's set_to_none: the next backward pass writes new ones)."""
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self):
        """One update of every parameter that has a gradient: torch's multi-tensor
        arithmetic (on a CPU the same, bit for bit, as its default one tensor at a time)."""
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        indices = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not indices:
            return
        states = [self.state.get(i) or self._new_state(i, self.params[i]) for i in indices]
        params, grads = [self.params[i] for i in indices], [self.params[i].grad for i in indices]
        if any(grad.is_sparse for grad in grads):
            raise UsageError("a parameter of the network has a sparse gradient (an nn.Embedding with sparse=True?): "
                             "Adam needs dense ones; leave out sparse=True in the module")
        exp_avgs, exp_avg_sqs = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1.0)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        counts = [step.item() for step in steps]
        step_sizes = [(lr / (1 - beta1 ** n)) * -1 for n in counts]
        floor = negligible_square(eps, beta2) if all(v.dtype == torch.float32 for v in exp_avg_sqs) else 0.0
        denominators = torch._foreach_maximum(exp_avg_sqs, floor)
        torch._foreach_sqrt_(denominators)
        torch._foreach_div_(denominators, [(1 - beta2 ** n) ** 0.5 for n in counts])
        torch._foreach_add_(denominators, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominators, step_sizes)

    def _new_state(self, index, param):
        self.state[index] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(param),
                             "exp_avg_sq": torch.zeros_like(param)}
        return self.state[index]

    def state_dict(self):
        """As torch.optim.Adam's: parameters by their index."""
        group = {**self.param_groups[0], "params": list(range(len(self.params)))}
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, saved):
        """Loads a state_dict of this class or of torch.optim.Adam over the same parameters."""
        groups = saved["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the saved optimizer state is for other parameters than this network's")
        self.param_groups[0].update(lr=groups[0]["lr"], betas=tuple(groups[0]["betas"]), eps=groups[0]["eps"])
        self.state = {}
        for position, index in enumerate(groups[0]["params"]):
            if index in saved["state"]:
                param, state = self.params[position], saved["state"][index]
                self.state[position] = {"step": torch.as_tensor(state["step"], dtype=torch.float32).cpu(),
                                        "exp_avg": state["exp_avg"].to(param.device, param.dtype),
                                        "exp_avg_sq": state["exp_avg_sq"].to(param.device, param.dtype)}


def negligible_square(eps, beta2):
    """A floor for float32 second moments below which the square root, divided by Adam's
    bias correction (at least sqrt(1 - beta2)), is under a quarter of a float32 ulp of `eps`:
    the denominator rounds to `eps` either way, so raising smaller values to it changes no
    result. CPUs take the square root of a 0 or a subnormal number 20 to 40 times slower
    than of a normal one, and the moments of embedding rows not yet seen, or of weights of
    units that never fire, are 0 (README, "Adam's square roots")."""
    return eps ** 2 * 2.0 ** -52 * (1 - beta2)

