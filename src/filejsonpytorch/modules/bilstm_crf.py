"""BiLSTM-CRF sequence tagger (Lample et al. 2016; Huang, Xu & Yu 2015).

The BiLSTM tagger's per-element label scores feed a linear-chain CRF that scores whole
label sequences: training maximises the probability of the gold sequence (forward
algorithm). Prediction computes each element's marginal label probabilities
(forward-backward), which the application answers as `dist` and `conf`. The labels are,
with `decode: "marginal"` (the default), the most probable label of each element (the
GATE host expects `output` to be the argmax of `dist`; on our NER validation data this
was also slightly more accurate), or with `decode: "viterbi"` the best whole sequence.
With `constrain_chunks`, the CRF gives no probability to invalid LF chunk transitions
(`PER|I` after `O`), so Viterbi paths are always valid chunkings.

The trainer picks this module by default when the labels are chunk labels (NER,
chunking). Hyper-parameters: those of bilstm_tagger, plus constrain_chunks and decode.
"""

from .bilstm_tagger import BiLSTMTagger
from .crf import CRF, chunk_transitions


class BiLSTMCRF(BiLSTMTagger):
    hparams = {**BiLSTMTagger.hparams, "constrain_chunks": True, "decode": "marginal"}
    tasks = {"sequence"}

    def __init__(self, arch):
        super().__init__(arch)
        allowed = chunk_transitions(arch.labels) if self.hp["constrain_chunks"] else None
        self.crf = CRF(self.n_outputs, allowed)

    def loss(self, scores, batch):
        """scores [B, T, C] -> the mean negative log-likelihood per real element, a scalar."""
        mask = batch["mask"]
        return self.crf.neg_log_likelihood(scores, batch["target"], mask) / mask.sum()

    def predict(self, scores, batch):
        """scores [B, T, C] -> (labels long [B, T], marginal probabilities [B, T, C])."""
        mask = batch["mask"]
        marginals = self.crf.marginals(scores.double(), mask)
        if self.hp["decode"] == "viterbi":
            return self.crf.viterbi(scores, mask), marginals
        return marginals.argmax(dim=-1), marginals
