"""Word dropout for training: rare ids are replaced by the out-of-vocabulary id with
probability alpha / (alpha + count), so the network learns what unseen values mean."""

import torch

from ..lfdata import OOV


class WordDropout:
    """Applied to each training batch (a dict of tensors, see batches.py); the nominal
    columns' tables are concatenated so one gather serves all columns."""

    def __init__(self, arch, vocabs, alpha):
        tables = {emb_id: self._table(arch, emb_id, v, alpha) for emb_id, v in vocabs.items()}
        nominal = arch.nominal
        starts, offset = {}, 0
        for emb_id in dict.fromkeys(nominal):
            starts[emb_id] = offset
            offset += len(tables[emb_id])
        self.nominal_offsets = torch.tensor([starts[e] for e in nominal], dtype=torch.long)
        self.nominal_table = torch.cat([tables[e] for e in starts]) if starts else None
        self.lists = [(i, tables[s["emb"]]) for i, s in enumerate(arch.lists) if tables[s["emb"]].any()]
        if self.nominal_table is not None and not self.nominal_table.any():
            self.nominal_table = None

    @staticmethod
    def _table(arch, emb_id, vocab, alpha):
        """Each id's probability of being dropped: none for one-hot inputs, padding and OOV."""
        counts = torch.tensor(vocab.counts, dtype=torch.float).clamp(min=1)
        table = alpha / (alpha + counts)
        embeddings = arch.embeddings
        if alpha <= 0 or emb_id not in embeddings or embeddings[emb_id].train == "onehot":
            table.zero_()
        table[:2] = 0.0
        return table

    def __call__(self, batch):
        if self.nominal_table is not None:
            batch["nominal"] = self._drop(batch["nominal"], self.nominal_table[batch["nominal"] + self.nominal_offsets])
        if self.lists:
            lists = list(batch["lists"])
            for i, table in self.lists:
                lists[i] = self._drop(lists[i], table[lists[i]])
            batch["lists"] = lists
        return batch

    @staticmethod
    def _drop(ids, probabilities):
        return ids.masked_fill(torch.rand(ids.shape) < probabilities, OOV)
