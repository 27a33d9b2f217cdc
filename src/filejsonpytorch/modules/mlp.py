"""Feed-forward network for non-sequence instances: classification and regression.

All features (embedded nominal values, CNN/BiLSTM-encoded n-gram lists, standardised
numbers) are concatenated and passed through `layers` hidden layers of `hidden` units
(ReLU, dropout) to the output layer. This is the network the trainer builds by default
for instances that are not sequences; on numeric data such as UCI Ionosphere or abalone
it is the classic multi-layer perceptron (Rumelhart, Hinton & Williams 1986), on n-gram
lists it becomes the CNN sentence classifier of Kim (2014). For classification, the
scores of a naive Bayes model of each list's words and word pairs (`NaiveBayesBag`,
Wang & Manning 2012) are added to the network's when it validates and predicts: in
5-fold cross-validation on sentence polarity, 0.773 accuracy against 0.746 for the same
models' network scores alone and 0.772 for naive Bayes alone (0.776 with the word dropout
of 4 that is the default since).

Hyper-parameters: hidden (units per layer), layers, dropout, input_dropout, naive_bayes
(the weight of the naive Bayes scores; 0 leaves them out). The defaults below suit n-gram
lists; for fixed-length feature vectors the trainer sets 3 layers of 500 units
(`VECTOR_MLP_HPARAMS` in architecture.py), which in 5-fold cross-validation raised
ionosphere accuracy from 0.910 to 0.946.
"""

from torch import nn

from .base import LFModule
from .encoder import InputEncoder, NaiveBayesBag


class MLP(LFModule):
    hparams = {"hidden": 200, "layers": 1, "dropout": 0.5, "input_dropout": 0.0, "naive_bayes": 2.0}
    tasks = {"classification", "regression"}

    def __init__(self, arch):
        super().__init__(arch)
        self.encoder = InputEncoder(arch)
        layers = [nn.Dropout(self.hp["input_dropout"])]
        width = self.encoder.out_dim
        for _ in range(self.hp["layers"]):
            layers += [nn.Linear(width, self.hp["hidden"]), nn.ReLU(), nn.Dropout(self.hp["dropout"])]
            width = self.hp["hidden"]
        layers.append(nn.Linear(width, self.n_outputs))
        self.layers = nn.Sequential(*layers)
        with_bags = self.task == "classification" and self.hp["naive_bayes"]
        self.bags = nn.ModuleList(NaiveBayesBag(arch["embeddings"][spec["emb"]]["vocab_size"], self.n_outputs)
                                  for spec in arch["lists"] if with_bags)

    def initialise_from(self, batches):
        for i, bag in enumerate(self.bags):
            bag.count((b["lists"][i], b["target"]) for b in batches)

    def forward(self, batch):
        scores = self.layers(self.encoder(batch))
        if self.task == "regression":
            return scores.squeeze(-1)
        if not self.training:
            # counted on the training data, naive Bayes is over-confident there, so the
            # network learns alone and the counts join it for validation and prediction
            for bag, ids in zip(self.bags, batch["lists"]):
                scores = scores + self.hp["naive_bayes"] * bag(ids)
        return scores
