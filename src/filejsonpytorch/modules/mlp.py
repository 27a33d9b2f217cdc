"""Feed-forward network for non-sequence instances: classification and regression.

All features (embedded nominal values, CNN/BiLSTM-encoded n-gram lists, standardised
numbers) are concatenated and passed through `layers` hidden layers of `hidden` units
(ReLU, dropout) to the output layer. This is the network the trainer builds by default
for instances that are not sequences; on numeric data such as UCI Ionosphere or abalone
it is the classic multi-layer perceptron (Rumelhart, Hinton & Williams 1986), on n-gram
lists it becomes the CNN sentence classifier of Kim (2014). For classification, the
scores of a naive Bayes model of each list's words and word pairs (`NaiveBayesBag`,
Wang & Manning 2012) are added to the network's when it validates and predicts (measured
in the README, "The network built from the metadata").

Hyper-parameters: hidden (units per layer), layers, dropout, input_dropout, naive_bayes
(the weight of the naive Bayes scores; 0 leaves them out). The defaults below suit n-gram
lists; fixed-length feature vectors get `VECTOR_HPARAMS` (`data_hparams`).
"""

from torch import nn

from .base import LFModule
from .dropout import Dropout
from .encoder import InputEncoder, NaiveBayesBag


#: for fixed-length feature vectors (no n-gram lists): deeper and wider, see the README
VECTOR_HPARAMS = {"hidden": 500, "layers": 3}


class MLP(LFModule):
    hparams = {"hidden": 200, "layers": 1, "dropout": 0.5, "input_dropout": 0.0, "naive_bayes": 1.0}
    tasks = {"classification", "regression"}

    @classmethod
    def data_hparams(cls, schema):
        if not schema.lists:
            return VECTOR_HPARAMS, "fixed-length feature vectors (no n-gram lists) want a deeper, wider network"
        return {}, None

    def __init__(self, arch):
        super().__init__(arch)
        self.encoder = InputEncoder(arch)
        layers = [Dropout(self.hp["input_dropout"])]
        width = self.encoder.out_dim
        for _ in range(self.hp["layers"]):
            layers += [nn.Linear(width, self.hp["hidden"]), nn.ReLU(), Dropout(self.hp["dropout"])]
            width = self.hp["hidden"]
        layers.append(nn.Linear(width, self.n_outputs))
        self.layers = nn.Sequential(*layers)
        with_bags = self.task == "classification" and self.hp["naive_bayes"]
        self.bags = nn.ModuleList(NaiveBayesBag(arch.embeddings[spec["emb"]].vocab_size, self.n_outputs)
                                  for spec in arch.lists if with_bags)

    def initialise_from(self, batches):
        for i, bag in enumerate(self.bags):
            bag.count((b["lists"][i], b["target"]) for b in batches)

    def forward(self, batch):
        """[B, C] label scores, or [B] values for regression."""
        scores = self.layers(self.encoder(batch))
        if self.task == "regression":
            return scores.squeeze(-1)
        if not self.training:
            # counted on the training data, naive Bayes is over-confident there, so the
            # network learns alone and the counts join it for validation and prediction
            for bag, ids in zip(self.bags, batch["lists"]):
                scores = scores + self.hp["naive_bayes"] * bag(ids)
        return scores
