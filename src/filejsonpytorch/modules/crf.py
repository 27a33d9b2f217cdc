"""Linear-chain conditional random field (CRF) output layer for sequence tagging.

A tagger that picks each token's label independently can output label sequences
that make no sense together (an "inside" label with no chunk to be inside of) and
cannot use what it knows about the neighbouring labels. A linear-chain CRF scores
whole label sequences: the score of tags y_1..y_n for emissions E (per-token label
scores from e.g. a BiLSTM) is

    start[y_1] + sum_t E[t, y_t] + sum_{t>1} transitions[y_{t-1}, y_t] + end[y_n]

and p(y | E) = exp(score(y)) / Z, where Z sums exp(score) over all label sequences.
Z, the best sequence and the per-position marginals are computed exactly with the
forward, Viterbi and forward-backward recursions, all in log space.

Follows Lafferty, McCallum and Pereira (2001), "Conditional Random Fields:
Probabilistic Models for Segmenting and Labeling Sequence Data", used as the output
layer of a BiLSTM as in Lample et al. (2016), "Neural Architectures for Named
Entity Recognition".

API (B = batch, T = time steps, C = number of tags; mask is bool [B, T],
left-aligned, every sequence at least one step long):

    crf = CRF(num_tags, allowed=None)
    crf.neg_log_likelihood(emissions, tags, mask)  # scalar: sum over the batch
    crf.log_partition(emissions, mask)             # [B]: log Z
    crf.viterbi(emissions, mask)                   # long [B, T], padding 0
    crf.marginals(emissions, mask)                 # float [B, T, C]
    chunk_transitions(labels)                      # `allowed` for chunk labels, or None

`allowed` is a bool tensor [C + 1, C]: rows 0..C-1 say which transitions
prev -> next may occur, row C which tags may start a sequence. Disallowed ones get
the fixed score DISALLOWED_SCORE instead of their learned score, so they are never
predicted and carry (numerically) no probability.

Chunk labels are those the GATE LearningFramework produces ("Type|B", "Type|I",
"O", overlapping chunks joined with ",", e.g. "PER|B,LOC|I") or the CoNLL style
("B-Type", "I-Type", "O"). Which style applies is decided as by the LF host's chunk
scorer (lfhost.Chunks.detectScheme). The constraints assume every chunk begins with
a B label (IOB2): data in IOB1, where chunks may begin with I, must not be
constrained.
"""

from __future__ import annotations

from itertools import accumulate

import numpy as np
import torch
from torch import nn

from ..chunks import transitions

DISALLOWED_SCORE = -10000.0
INIT_RANGE = 0.1
#: the probability-space recursions rescale their vectors every this many steps
RESCALE_EVERY = 4


class CRF(nn.Module):
    """Linear-chain CRF over `num_tags` tags, optionally with forbidden transitions."""

    def __init__(self, num_tags: int, allowed: torch.Tensor | None = None):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be at least 1, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(_small_uniform(num_tags, num_tags))
        self.start = nn.Parameter(_small_uniform(num_tags))
        self.end = nn.Parameter(_small_uniform(num_tags))
        if allowed is None:
            allowed = torch.ones(num_tags + 1, num_tags, dtype=torch.bool)
        if tuple(allowed.shape) != (num_tags + 1, num_tags):
            raise ValueError(
                f"allowed must have shape {(num_tags + 1, num_tags)}, got {tuple(allowed.shape)}"
            )
        allowed = allowed.detach().to(self.transitions.device, torch.bool)
        self.register_buffer("allowed_transitions", allowed[:num_tags].clone())
        self.register_buffer("allowed_start", allowed[num_tags].clone())

    def neg_log_likelihood(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Sum over the batch of -log p(tags | emissions); tags at padding are ignored."""
        emissions, mask = self._prepare(emissions, mask)
        gold = self._path_score(emissions, tags, mask)
        return (self.log_partition(emissions, mask) - gold).sum()

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z for each sequence: [B]."""
        emissions, mask = self._prepare(emissions, mask)
        last_alpha = self._forward_alphas(emissions, mask)[:, -1]
        return torch.logsumexp(last_alpha + self.end, dim=1)

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Highest-scoring tag sequence per batch element: long [B, T], 0 at padding."""
        emissions, mask = self._prepare(emissions, mask)
        transitions = self._transition_scores()
        score = self._start_scores() + emissions[:, 0]
        # At padding steps the back-pointer is the identity, so the best final tag
        # is carried unchanged back to each sequence's real last position.
        identity = torch.arange(self.num_tags, device=emissions.device).expand_as(score)
        backpointers = []
        for t in range(1, emissions.shape[1]):
            best_prev_score, best_prev = (score.unsqueeze(2) + transitions).max(dim=1)
            step = mask[:, t].unsqueeze(1)
            score = torch.where(step, best_prev_score + emissions[:, t], score)
            backpointers.append(torch.where(step, best_prev, identity))
        current = (score + self.end).argmax(dim=1)
        path = [current]
        for pointers in reversed(backpointers):
            current = pointers.gather(1, current.unsqueeze(1)).squeeze(1)
            path.append(current)
        path = torch.stack(path[::-1], dim=1)
        return path.masked_fill(~mask, 0)

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """p(tag at position t = c | emissions): float [B, T, C], 0 at padding."""
        emissions, mask = self._prepare(emissions, mask)
        if emissions.device.type == "cpu" and not (torch.is_grad_enabled() and emissions.requires_grad):
            marginals = self._scaled_marginals(emissions, mask)
            if marginals is not None:
                return marginals
        alphas = self._forward_alphas(emissions, mask)
        betas = self._backward_betas(emissions, mask)
        log_z = torch.logsumexp(alphas[:, -1] + self.end, dim=1)
        log_marginals = alphas + betas - log_z[:, None, None]
        return log_marginals.exp().masked_fill(~mask.unsqueeze(2), 0.0)

    @torch.no_grad()
    def _scaled_marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """The marginals by forward-backward in probability space, rescaled as it goes
        (Rabiner 1989): the same numbers as the log-space recursions, from one small NumPy
        product per element and direction instead of many tensor operations, which is what
        a single sentence's answer costs. None if the potentials underflow (then use log space)."""
        scores = emissions.double().numpy()
        transitions = self._transition_scores().double().exp().numpy()
        start = self._start_scores().double().exp().numpy()
        end = self.end.double().exp().numpy()
        marginals = np.zeros_like(scores)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # caught below
            for b, length in enumerate(mask.sum(dim=1).tolist()):
                marginals[b, :length] = _sequence_marginals(scores[b, :length], transitions, start, end)
        if not np.isfinite(marginals).all():
            return None
        return torch.from_numpy(marginals).to(emissions.dtype)

    def _prepare(
        self, emissions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if emissions.dim() != 3 or emissions.shape[:2] != mask.shape:
            raise ValueError(
                f"emissions must be [B, T, C] and mask [B, T], got {tuple(emissions.shape)} "
                f"and {tuple(mask.shape)}"
            )
        if emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions have {emissions.shape[2]} tags, CRF has {self.num_tags}")
        # Half-precision logsumexp over long sequences loses too much; compute in float32.
        if emissions.dtype in (torch.float16, torch.bfloat16):
            emissions = emissions.float()
        return emissions, mask.to(torch.bool)

    def _transition_scores(self) -> torch.Tensor:
        return torch.where(self.allowed_transitions, self.transitions, DISALLOWED_SCORE)

    def _start_scores(self) -> torch.Tensor:
        return torch.where(self.allowed_start, self.start, DISALLOWED_SCORE)

    def _forward_alphas(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """alpha[b, t, c]: log-sum of the scores of all prefixes ending in tag c at t.

        Padding steps repeat the last real step, so alpha[:, -1] is each sequence's final alpha.
        """
        transitions = self._transition_scores()
        alpha = self._start_scores() + emissions[:, 0]
        alphas = [alpha]
        for t in range(1, emissions.shape[1]):
            extended = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), extended, alpha)
            alphas.append(alpha)
        return torch.stack(alphas, dim=1)

    def _backward_betas(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """beta[b, t, c]: log-sum of the scores of all suffixes after tag c at t (incl. end)."""
        transitions = self._transition_scores()
        end = self.end.expand_as(emissions[:, 0])
        beta = end
        betas = [beta]
        for t in range(emissions.shape[1] - 2, -1, -1):
            following = (emissions[:, t + 1] + beta).unsqueeze(1)
            extended = torch.logsumexp(transitions + following, dim=2)
            # Where t + 1 is padding, t is the last real position (or padding itself).
            beta = torch.where(mask[:, t + 1].unsqueeze(1), extended, end)
            betas.append(beta)
        return torch.stack(betas[::-1], dim=1)

    def _path_score(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Unnormalised score of the given tag sequences: [B]."""
        # Padding may hold an ignore index such as -100, which gather would reject.
        tags = tags.long().masked_fill(~mask, 0)
        real = mask.to(emissions.dtype)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        score = self._start_scores()[tags[:, 0]] + (emitted * real).sum(dim=1)
        if tags.shape[1] > 1:
            transitioned = self._transition_scores()[tags[:, :-1], tags[:, 1:]]
            score = score + (transitioned * real[:, 1:]).sum(dim=1)
        last_index = mask.sum(dim=1, keepdim=True) - 1
        last_tag = tags.gather(1, last_index).squeeze(1)
        return score + self.end[last_tag]


def chunk_transitions(labels: list[str]) -> torch.Tensor | None:
    """The `allowed` tensor [C + 1, C] for chunk labels (see chunks.transitions), None if
    they are not chunk labels."""
    rows = transitions(labels)
    return None if rows is None else torch.tensor(rows, dtype=torch.bool)


def _sequence_marginals(scores: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """One sequence's emission scores [T, C] and exp'd CRF scores -> marginals [T, C]."""
    potentials = np.exp(scores - scores.max(axis=1, keepdims=True))
    steps = transitions * potentials[1:, None, :]  # steps[t]: from the tags at t to those at t + 1
    alphas = np.array(list(accumulate(enumerate(steps), _forward_step, initial=start * potentials[0])))
    betas = np.array(list(accumulate(enumerate(steps[::-1]), _backward_step, initial=end))[::-1])
    joint = alphas * betas
    return joint / joint.sum(axis=1, keepdims=True)


def _forward_step(alpha: np.ndarray, numbered_step: tuple) -> np.ndarray:
    """alpha [C] at t -> at t + 1, rescaled every RESCALE_EVERY steps: in between it
    shrinks or grows by at most a few hundred orders of magnitude, far from the limits."""
    number, step = numbered_step
    alpha = alpha @ step
    return alpha / alpha.sum() if number % RESCALE_EVERY == 0 else alpha


def _backward_step(beta: np.ndarray, numbered_step: tuple) -> np.ndarray:
    """beta [C] at t + 1 -> at t, rescaled as in `_forward_step`."""
    number, step = numbered_step
    beta = step @ beta
    return beta / beta.sum() if number % RESCALE_EVERY == 0 else beta


def _small_uniform(*shape: int) -> torch.Tensor:
    return torch.empty(*shape).uniform_(-INIT_RANGE, INIT_RANGE)
