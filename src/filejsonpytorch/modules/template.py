"""A starting point for your own network module.

Copy this file to `MyNet.py` in the `modules` folder of your wrapper directory
(DATADIR/FileJsonPyTorch/modules/, next to train.sh; or into filejsonpytorch/modules/),
rename the class, edit it, and train with `--module MyNet`. The model file records the
module name and its hyper-parameters; application rebuilds the network from this code
and the saved weights, so keep the file where it is for as long as you use the model.

What you get:
- `arch`: the architecture the trainer printed, typed (`filejsonpytorch.architecture`:
  `arch.task` is classification, sequence or regression; `arch.n_outputs`, `arch.labels`,
  `arch.embeddings`, `arch.lists`, ...); `self.hp` its `hparams` over the defaults below.
- `InputEncoder(arch)`: embeds all features of an instance (or of every sequence element)
  into one vector of size `encoder.out_dim`.
- `forward(batch)` must return scores: [B, C] (classification), [B, T, C] (sequences,
  `batch["mask"]` marks real elements) or [B] (regression). Override `loss` and `predict`
  (see base.py) only if your output is something else, as bilstm_crf.py does; override
  `initialise_from(batches)` to initialise from the training data (mlp.py does),
  `data_hparams(schema)` for defaults that depend on the data (mlp.py) and
  `list_layers(lists)` to read list features with layers of your own (cnn_classifier.py).
Hyper-parameters in `hparams` can be changed without editing code:
`--hparams hidden=50,dropout=0.5`, or `hparams:` in FileJsonPyTorch.yaml.
"""

from torch import nn

from filejsonpytorch.modules.base import LFModule
from filejsonpytorch.modules.dropout import Dropout
from filejsonpytorch.modules.encoder import InputEncoder


class TemplateNet(LFModule):
    hparams = {"hidden": 100, "dropout": 0.3}

    def __init__(self, arch):
        super().__init__(arch)
        self.encoder = InputEncoder(self.arch)  # self.arch: with this module's list_layers
        self.hidden = nn.Sequential(nn.Linear(self.encoder.out_dim, self.hp["hidden"]), nn.ReLU(), Dropout(self.hp["dropout"]))
        self.output = nn.Linear(self.hp["hidden"], self.n_outputs)

    def forward(self, batch):
        """A batch (see encoder.py) -> [B, C] label scores, [B, T, C] for sequences, [B] for regression."""
        scores = self.output(self.hidden(self.encoder(batch)))
        return scores.squeeze(-1) if self.task == "regression" else scores
