"""Saving and loading a model: `PREFIX.json` (everything but tensors) + `PREFIX.<gen>.pt`.

The JSON holds the format version, the feature schema, the vocabularies, the labels,
the architecture, the training options and the validation history, and names the tensor
file it belongs to. Tensors are a plain dict loaded with `torch.load(weights_only=True)`:
loading a model never runs code from the model files.

A save is atomic at every moment: the tensors go to a new numbered file (written to a
temporary name, flushed, renamed), then the JSON is replaced the same way, and only then
is the previous tensor file removed. A crash at any point leaves a JSON naming a complete
tensor file, so the last good model always loads.
"""

import json
import os
import re

import torch

from .errors import ModelError

FORMAT = "filejsonpytorch-model"
VERSION = 1


def json_path(prefix):
    return f"{prefix}.json"


def _tensor_name(prefix, generation):
    return f"{os.path.basename(prefix)}.{generation}.pt"


def _write_atomically(path, write):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _sync_directory(os.path.dirname(os.path.abspath(path)))


def _sync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_model(prefix, info, tensors):
    """info: JSON-able dict; tensors: {"model": state_dict, "optimizer": ..., ...}."""
    previous = _current_tensor_file(prefix)
    generation = _next_generation(prefix)
    tensor_file = _tensor_name(prefix, generation)
    directory = os.path.dirname(os.path.abspath(prefix))
    _write_atomically(os.path.join(directory, tensor_file), lambda f: torch.save(tensors, f))
    document = {"format": FORMAT, "version": VERSION, "tensors": tensor_file, **info}
    payload = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
    _write_atomically(json_path(prefix), lambda f: f.write(payload))
    if previous and previous != tensor_file:
        _remove_quietly(os.path.join(directory, previous))
    _remove_stale_tensor_files(prefix, keep=tensor_file)


def _current_tensor_file(prefix):
    try:
        with open(json_path(prefix), encoding="utf-8") as f:
            return json.load(f).get("tensors")
    except (OSError, ValueError, AttributeError):
        return None


def _tensor_files(prefix):
    directory = os.path.dirname(os.path.abspath(prefix))
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r"\.(\d+)\.pt$")
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    return {name: int(m.group(1)) for name in names if (m := pattern.match(name))}


def _next_generation(prefix):
    return max(_tensor_files(prefix).values(), default=0) + 1


def _remove_stale_tensor_files(prefix, keep):
    """Tensor files left by an earlier interrupted save, never the one in use."""
    directory = os.path.dirname(os.path.abspath(prefix))
    for name in _tensor_files(prefix):
        if name != keep:
            _remove_quietly(os.path.join(directory, name))


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def load_model(prefix, map_location="cpu"):
    """-> (info dict, tensors dict); a clear ModelError for anything missing or broken."""
    path = json_path(prefix)
    info = _read_info(path)
    tensor_path = os.path.join(os.path.dirname(os.path.abspath(prefix)), info["tensors"])
    try:
        tensors = torch.load(tensor_path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{tensor_path}: the model's tensor file is missing (named in {path})") from None
    except Exception as e:
        raise ModelError(f"{tensor_path}: the model's tensor file is damaged ({type(e).__name__}: {e})") from None
    if not isinstance(tensors, dict) or "model" not in tensors:
        raise ModelError(f"{tensor_path}: not a tensor file of this model")
    return info, tensors


def _read_info(path):
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise ModelError(f"{path}: no model here (train one first, or check the model prefix)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: the model file is damaged or truncated ({e})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelError(f"{path}: not a filejsonpytorch model file")
    if not isinstance(info.get("version"), int) or info["version"] > VERSION:
        raise ModelError(f"{path}: model format version {info.get('version')} is newer than this program "
                         f"understands ({VERSION}); upgrade filejsonpytorch")
    for key in ("tensors", "schema", "vocabs", "arch"):
        if key not in info:
            raise ModelError(f"{path}: the model file lacks {key!r}")
    return info


def load_network(prefix, device="cpu"):
    """A saved model ready for prediction: (info, schema, vocabs, network in eval mode)."""
    from . import architecture, lfdata, vocab

    info, tensors = load_model(prefix)
    try:
        schema = lfdata.FeatureSchema.from_json(info["schema"])
        vocabs = {k: vocab.Vocab.from_json(k, v) for k, v in info["vocabs"].items()}
        network = architecture.build_network(info["arch"])
        network.load_state_dict(tensors["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelError(f"{json_path(prefix)}: the model does not fit its network ({type(e).__name__}: {e})") from None
    return info, schema, vocabs, network.to(device).eval()
