"""Pre-trained embedding vectors for the embedding ids that name an `emb_file`.

`prepare_pretrained` reads the files before the network is built (with `mapping`, or
`yes` when asked, the vocabulary grows by the file's other words, so application covers
them); `init_pretrained` copies the vectors into the built network.
"""

import logging

import torch

from .embeddings import format_stats, load_pretrained

log = logging.getLogger("filejsonpytorch")


def prepare_pretrained(vocabs, datadir, rng):
    """-> {emb_id: Pretrained}; the vocabularies' itos/counts are extended in place."""
    loaded = {}
    for emb_id, v in vocabs.items():
        s = v.settings
        if not s.file or s.train == "onehot":
            continue
        add_words = s.add_file_words if s.add_file_words is not None else s.train == "mapping"
        result = load_pretrained(s.file, v.itos, v.counts, datadir=datadir, add_file_words=add_words, rng=rng)
        if s.dims and s.dims != result.dims:
            log.info("embedding id %r: using the file's %d dimensions instead of %d", emb_id, result.dims, s.dims)
        s.dims = result.dims
        if len(result.itos) > len(v.itos):
            v.extend(result.itos[len(v.itos):])
        log.info("%s", format_stats(emb_id, result.stats, trainable=s.train in ("", "yes")))
        loaded[emb_id] = result
    return loaded


def init_pretrained(network, loaded, arch):
    members = getattr(network, "members", [network])
    for emb_id, result in loaded.items():
        tables = [m.encoder.embeddings[emb_id] for m in members
                  if hasattr(m, "encoder") and emb_id in m.encoder.embeddings]
        if not tables:
            log.warning("module %s has no embedding %r: its pre-trained vectors are not used", arch.module, emb_id)
        with torch.no_grad():
            for table in tables:
                table.weight.copy_(torch.from_numpy(result.matrix))
