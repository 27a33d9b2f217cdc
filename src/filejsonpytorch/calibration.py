"""Calibration of the probabilities a model reports: the temperature of `LFModule.calibrated`.

A network kept for its validation accuracy is over-confident: the sentence-polarity mlp
with naive Bayes gives the wrong label a probability near 1 for most of its errors. The
host stores `conf` on annotations and users threshold it, so it should mean what it says.
Temperature scaling (Guo et al. 2017) divides the log-probabilities by one number T, the one
with the lowest log-loss on the validation set; the predicted labels stay the same.
"""

import torch

#: with fewer labelled validation items T stays 1: too few to fit even one number reliably
MIN_ITEMS = 200
#: the temperatures tried: exp(k / 10) for k = -30..46, 0.05 to 99.5 in 10% steps, 1 among them
GRID = torch.exp(torch.arange(-30, 47, dtype=torch.float64) / 10)


class TemperatureSearch:
    """Sums, batch by batch, the log-loss of predicted probabilities under every temperature
    of GRID, so a validation pass finds the best one without keeping its outputs."""

    def __init__(self):
        self.loss_sums = torch.zeros(len(GRID), dtype=torch.float64)
        self.items = 0

    def add(self, probabilities, target):
        """probabilities [N, C] of N labelled items (instances or sequence elements), target [N]."""
        # a gold label of probability 0 (ruled out by a CRF constraint) would make every sum infinite
        log_p = probabilities.detach().float().clamp(min=1e-30).log()
        gold = log_p.gather(1, target.unsqueeze(1)).squeeze(1)
        sums = [((log_p / t).logsumexp(1) - gold / t).double().sum() for t in GRID.tolist()]
        self.loss_sums += torch.stack(sums).cpu()
        self.items += len(target)

    def mean_loss(self, index):
        return float(self.loss_sums[index]) / max(1, self.items)

    def best(self):
        """-> (temperature, validation log-loss with it, log-loss at T = 1); T = 1 if too few items."""
        at_one = int((GRID == 1.0).nonzero())
        index = int(self.loss_sums.argmin()) if self.items >= MIN_ITEMS else at_one
        return float(GRID[index]), self.mean_loss(index), self.mean_loss(at_one)
