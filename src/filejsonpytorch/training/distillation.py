"""Distillation: one network trained to answer as a cross-validation ensemble does, so that
the application runs one network instead of K (the ensemble's K times the arithmetic).

Where every input is a number or a one-hot value, a network of the members' architecture
(the student) learns the ensemble's probabilities (for regression: the midpoint of the
ensemble's value and the true one, which measured better than the ensemble's alone) on
copies of the training instances whose standardised numbers carry noise of NOISE: a new
draw each epoch, so that it learns the ensemble's answers around the instances and not only
at them (Bucila et al. 2006, "Model compression"; Hinton et al. 2015). It stops once its
answers on one fixed draw, never trained on, have not come IMPROVEMENT closer to the
ensemble's for PATIENCE epochs (the last small gains cost half the epochs and bought
nothing, measured), keeps its closest state, and answers with the ensemble's temperature.
Inputs with learned embeddings or n-gram lists keep the ensemble: noise does not reach
their words, and there a student measured no better or lower. Figures: benchmarks/README.md.
"""

import dataclasses
import math

import numpy as np
import torch

from ..batches import Passes, TensorData, epoch_order, to_device
from ..network import build_network
from .adam import Adam

NOISE = 0.1  # in standard deviations of each number
PATIENCE = 10  # epochs without the student coming markedly closer to the ensemble:
IMPROVEMENT = 0.03  # by this share of its distance
TEACHER_ROWS = 1024  # instances the ensemble answers at once
CHECK_ROWS = 4096  # instances of the fixed noisy copies (all, for data under the default's 1000)


def distils_by_default(arch):
    """Whether the defaults replace a cross-validation ensemble of `arch` by its student:
    inputs of numbers and one-hot values only, where it was measured to answer as well."""
    return not arch.lists and all(e.train == "onehot" for e in arch.embeddings.values())


@dataclasses.dataclass
class Closeness:
    """How closely the student answers as the ensemble on the fixed noisy copies."""

    epoch: int
    distance: float  # cross-entropy from the ensemble's probabilities, or mean squared difference
    agreement: float = None  # the share of copies given the ensemble's label (None for regression)


def distil(teacher, arch, data, device, seed, max_epochs, stop):
    """-> (the student: a network of `arch` trained on `data` to answer as `teacher`, an
    ensemble of such networks; its Closeness), or None when `stop` (a StopRequest) came first."""
    torch.manual_seed(seed)
    student = build_network(arch).to(device)
    data = TensorData(data)
    student.initialise_from(Passes(data, 1024, device))
    teacher.eval()
    rng = np.random.default_rng(seed)
    checked = np.sort(rng.permutation(data.size)[:CHECK_ROWS])
    check = noisy(to_device(data.batch(checked), device), torch.Generator(device).manual_seed(seed))
    check_answers = answers(teacher, check)
    optimizer = Adam([p for p in student.parameters() if p.requires_grad], lr=arch.training.learningrate)
    best, state, mark = None, None, None  # mark: the last epoch that came markedly closer
    for epoch in range(1, max_epochs + 1):
        if not train_epoch(student, teacher, data, optimizer, rng, device, stop):
            return None
        closeness = measure(student, check, check_answers, epoch)
        if best is None or closeness.distance < best.distance:
            best, state = closeness, {k: v.detach().clone() for k, v in student.state_dict().items()}
        if mark is None or closeness.distance < (1 - IMPROVEMENT) * mark.distance:
            mark = closeness
        elif epoch - mark.epoch >= PATIENCE:
            break
    student.load_state_dict(state)
    student.temperature = teacher.temperature
    return student.eval(), best


def train_epoch(student, teacher, data, optimizer, rng, device, stop):
    """One epoch on fresh noisy copies; False when a stop was requested."""
    training = student.arch.training
    for batches in groups(epoch_order(data, int(training.batchsize), rng), TEACHER_ROWS):
        if stop.check():
            return False
        # one pass of the ensemble over a group of batches costs less than one per batch
        group = noisy(to_device(data.batch(np.concatenate(batches)), device))
        targets, start = targets_of(teacher, group), 0
        for indices in batches:
            rows = slice(start, start + len(indices))
            learn(student, rows_of(group, rows), targets[rows], optimizer, training.grad_clip)
            start += len(indices)
    return True


def noisy(batch, generator=None):
    """The batch with noise of NOISE added to its (standardised) numbers."""
    numbers = batch["numeric"]
    noise = torch.randn(numbers.shape, generator=generator, device=numbers.device, dtype=numbers.dtype)
    return {**batch, "numeric": numbers + NOISE * noise}


def groups(batches, rows):
    """The batches in consecutive groups of about `rows` instances."""
    group, size = [], 0
    for indices in batches:
        if group and size + len(indices) > rows:
            yield group
            group, size = [], 0
        group.append(indices)
        size += len(indices)
    if group:
        yield group


def rows_of(batch, rows):
    """The instances `rows` (a slice) of a batch of instances (not sequences)."""
    return {"nominal": batch["nominal"][rows], "numeric": batch["numeric"][rows],
            "lists": [ids[rows] for ids in batch["lists"]], "target": batch["target"][rows]}


def answers(network, batch):
    """What `network` answers for the batch: probabilities [B, C], or values [B]."""
    with torch.no_grad():
        predicted, probabilities = network.predict(network(batch), batch)
    return predicted if probabilities is None else probabilities


def targets_of(teacher, batch):
    """What the student learns to answer: the ensemble's probabilities, or for regression
    the midpoint of the ensemble's value and the true one."""
    answered = answers(teacher, batch)
    return answered if answered.dim() > 1 else (answered + batch["target"]) / 2


def distance(predicted, probabilities, target):
    """The distance of a network's prediction (as `predict` gives it) from the ensemble's
    answers `target`: a differentiable mean."""
    if probabilities is None:
        return torch.nn.functional.mse_loss(predicted, target)
    return -(target * probabilities.clamp_min(1e-12).log()).sum(dim=-1).mean()


def learn(student, batch, target, optimizer, grad_clip):
    student.train()
    optimizer.zero_grad()
    distance(*student.predict(student(batch), batch), target).backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(student.parameters(), grad_clip)
    optimizer.step()


def measure(student, check, target, epoch):
    student.eval()
    with torch.no_grad():
        predicted, probabilities = student.predict(student(check), check)
    agreement = None if probabilities is None else float((predicted == target.argmax(dim=-1)).double().mean())
    return Closeness(epoch, float(distance(predicted, probabilities, target)), agreement)


def describe(closeness, members, target_std=1.0):
    """The log's account of a student (`target_std`: of regression values, which the
    networks give standardised)."""
    if closeness.agreement is None:
        how = f"values a root mean square of {math.sqrt(closeness.distance) * target_std:.4f} from the ensemble's"
    else:
        how = f"the ensemble's label for {100 * closeness.agreement:.1f}% of them"
    return (f"one network distilled from the {members} answers in their place, at 1/{members} of the cost: on noisy "
            f"copies of the training instances it gives {how} (epoch {closeness.epoch})")
