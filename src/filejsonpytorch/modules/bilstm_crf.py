"""BiLSTM-CRF sequence tagger (Lample et al. 2016; Huang, Xu & Yu 2015).

The BiLSTM tagger's per-element label scores feed a linear-chain CRF that scores whole
label sequences: training maximises the probability of the gold sequence (forward
algorithm), prediction returns the best sequence (Viterbi) with each element's marginal
label probabilities (forward-backward) as confidences. With `constrain_chunks`, LF chunk
labels (`Type|B`, `Type|I`, `O`) can never form an invalid chunk such as `PER|I` after `O`.

The trainer picks this module by default when the labels are chunk labels (NER,
chunking). Hyper-parameters: those of bilstm_tagger, plus constrain_chunks.
"""

from .bilstm_tagger import BiLSTMTagger
from .crf import CRF, chunk_transitions


class BiLSTMCRF(BiLSTMTagger):
    hparams = {**BiLSTMTagger.hparams, "constrain_chunks": True}
    tasks = {"sequence"}

    def __init__(self, arch):
        super().__init__(arch)
        allowed = chunk_transitions(arch["labels"]) if self.hp["constrain_chunks"] else None
        self.crf = CRF(self.n_outputs, allowed)

    def loss(self, scores, batch):
        mask = batch["mask"]
        return self.crf.neg_log_likelihood(scores, batch["target"], mask) / mask.sum()

    def predict(self, scores, batch):
        mask = batch["mask"]
        return self.crf.viterbi(scores, mask), self.crf.marginals(scores.double(), mask)
