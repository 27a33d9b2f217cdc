"""The model file's one owner: `write_model` writes a trained model and `read_model` reads
it back; nothing else writes or rebuilds one. A model is `PREFIX.json` (everything but
tensors) + `PREFIX.<gen>.pt`; `PREFIX.arch.json` is the editable copy of its architecture.

The JSON holds the format version, the feature schema, the vocabularies, the labels,
the architecture, the training options, the validation history and the temperature of
the reported probabilities, and names the tensor file it belongs to. Tensors are a plain
dict loaded with `torch.load(weights_only=True)`: loading a model never runs code from
the model files.

A save is atomic at every moment: the tensors go to a new numbered file (written to a
temporary name, flushed, renamed), then the JSON is replaced the same way, and only then
is the previous tensor file removed. A crash at any point leaves a JSON naming a complete
tensor file, so the last good model always loads. The JSON records the tensor file's
SHA-256, so a damaged tensor file is reported instead of loading wrong weights; temporary
files of a save that was killed are removed by the next save.
"""

import hashlib
import json
import math
import os
import re

from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import EnvironmentProblem, ModelError, UserError

FORMAT = "filejsonpytorch-model"
VERSION = 1
RESERVED = ("format", "version", "tensors", "tensors_sha256")  # keys write_files writes itself


@dataclass
class Model:
    """Everything a model file holds, the network built and its weights loaded."""

    schema: Any  # lfdata.FeatureSchema: the features and labels
    vocabs: dict  # embedding id -> vocab.Vocab
    arch: Any  # architecture.Architecture: what `network` is built from
    network: Any  # the LFModule (or Ensemble); `network.temperature` is saved with it
    history: list = field(default_factory=list)  # one entry per validation
    position: dict = field(default_factory=lambda: {"epoch": 0, "instances": 0})  # where training stands
    optimizer_state: dict = None  # the optimizer's state_dict, to resume with it
    options: dict = field(default_factory=dict)  # the run options it was trained with


def write_model(prefix, model, optimizer=None):
    """Saves the model (and the optimizer's state, when given) atomically, see above."""
    info = {
        "schema": model.schema.to_json(),
        "vocabs": {k: v.to_json() for k, v in model.vocabs.items()},
        "arch": model.arch.to_json(),
        "options": model.options,
        "history": model.history,
        "position": model.position,
        "temperature": model.network.temperature,
    }
    tensors = {"model": {k: v.detach().cpu() for k, v in model.network.state_dict().items()}}
    if optimizer is not None:
        tensors["optimizer"] = _optimizer_state_cpu(optimizer)
    write_files(prefix, info, tensors)


def read_model(prefix, device="cpu"):
    """The saved model, its network on `device` in training mode; a clear ModelError for a
    damaged model or a module that no longer fits its weights."""
    from . import lfdata, vocab
    from .architecture import Architecture
    from .network import build_network

    info, tensors = read_files(prefix)
    try:
        schema = lfdata.FeatureSchema.from_json(info["schema"])
        vocabs = {k: vocab.Vocab.from_json(k, v) for k, v in info["vocabs"].items()}
        arch = Architecture.from_json(info["arch"])
        network = build_network(arch)
        network.load_state_dict(tensors["model"])
        network.temperature = _temperature(info, prefix)
    except UserError:
        raise
    except Exception as e:  # a damaged model, or a user module that fails to build
        raise ModelError(f"{json_path(prefix)}: the model does not fit its network ({_one_line(e)})") from None
    return Model(schema, vocabs, arch, network.to(device), info.get("history") or [],
                 info.get("position") or {"epoch": 0, "instances": 0}, tensors.get("optimizer"),
                 info.get("options") or {})


def write_arch_file(prefix, arch):
    """PREFIX.arch.json: the architecture for a user to copy, edit and pass to --arch."""
    payload = json.dumps(arch.to_json(), indent=2, ensure_ascii=False).encode("utf-8")
    path = f"{prefix}.arch.json"
    try:
        _write_atomically(path, lambda f: f.write(payload))
    except OSError as e:
        raise _cannot_save(path, e) from e


def _optimizer_state_cpu(optimizer):
    state = optimizer.state_dict()
    state["state"] = {k: {n: (t.cpu() if torch.is_tensor(t) else t) for n, t in s.items()} for k, s in state["state"].items()}
    return state


def _temperature(info, prefix):
    """The saved temperature of the network's probabilities (1 for models saved before
    there was one), checked: a positive finite number."""
    value = info.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ModelError(f"{json_path(prefix)}: 'temperature' must be a positive number, not {value!r}")
    return float(value)


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


def write_files(prefix, info, tensors):
    """info: JSON-able dict; tensors: {"model": state_dict, "optimizer": ..., ...}.
    A write that fails (a full disk, say) is an EnvironmentProblem naming the file; the
    previous model is then left as it was."""
    _remove_dead_temporaries(prefix)
    previous = _current_tensor_file(prefix)
    generation = _next_generation(prefix)
    tensor_file = _tensor_name(prefix, generation)
    directory = os.path.dirname(os.path.abspath(prefix))
    tensor_path = os.path.join(directory, tensor_file)
    try:
        _write_atomically(tensor_path, lambda f: _save_tensors(tensors, f))
    except OSError as e:
        raise _cannot_save(tensor_path, e) from e
    try:
        document = {"format": FORMAT, "version": VERSION, "tensors": tensor_file,
                    "tensors_sha256": _file_sha256(tensor_path),
                    **{k: v for k, v in info.items() if k not in RESERVED}}
        payload = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
        _write_atomically(json_path(prefix), lambda f: f.write(payload))
    except BaseException as e:
        # the JSON still names the previous tensor file: the new one is of no use
        _remove_quietly(tensor_path)
        if isinstance(e, OSError):
            raise _cannot_save(json_path(prefix), e) from e
        raise
    if previous and previous != tensor_file:
        _remove_quietly(os.path.join(directory, previous))
    _remove_stale_tensor_files(prefix, keep=tensor_file)


def remove_model(prefix):
    """Removes the model files PREFIX.json and its tensor files, if there are any: the JSON
    first, so that no reader finds it naming a tensor file that is gone."""
    _remove_quietly(json_path(prefix))
    _remove_stale_tensor_files(prefix, keep=None)


def _save_tensors(tensors, f):
    """torch.save, but a failed write is reported as the OSError it is (torch's zip writer
    replaces it by a RuntimeError about file positions)."""
    try:
        torch.save(tensors, f)
    except RuntimeError as e:
        cause = e.__context__
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__context__
        if cause is None:
            raise
        raise cause from None


def _cannot_save(path, error):
    return EnvironmentProblem(f"cannot write {path} ({error.strerror or error}); the previous model, if any, is kept")


def prepare_directory(prefix):
    """Makes the directory the model files go into; EnvironmentProblem if it cannot be."""
    directory = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise EnvironmentProblem(f"cannot write {prefix}: {directory} is not a directory that can be made or "
                                 f"written ({e.strerror or e})") from None


def _current_tensor_file(prefix):
    try:
        with open(json_path(prefix), encoding="utf-8") as f:
            name = json.load(f).get("tensors")
    except (OSError, ValueError, AttributeError):
        return None
    return name if _is_plain_name(name) else None


def _sha256(f):
    digest = hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _file_sha256(path):
    with open(path, "rb") as f:
        return _sha256(f)


def _is_plain_name(name):
    return isinstance(name, str) and name not in ("", ".", "..") and os.path.basename(name) == name


def _files_of(prefix, suffix):
    """{file name: its number} for the files beside the prefix named PREFIX + suffix, a
    regular expression whose one group is a number."""
    directory = os.path.dirname(os.path.abspath(prefix))
    pattern = re.compile(re.escape(os.path.basename(prefix)) + suffix + "$")
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    return {name: int(m.group(1)) for name in names if (m := pattern.match(name))}


def _remove_dead_temporaries(prefix):
    """Temporary files of writes that were killed (SIGKILL, power loss) before they finished:
    the model's, and those of the files written beside it (PREFIX.md.tmpPID and the like)."""
    directory = os.path.dirname(os.path.abspath(prefix))
    for name, pid in _files_of(prefix, r"\.[\w.]+\.tmp(\d+)").items():
        if not _process_alive(pid):
            _remove_quietly(os.path.join(directory, name))


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _tensor_files(prefix):
    return _files_of(prefix, r"\.(\d+)\.pt")


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


def read_files(prefix, map_location="cpu", attempts=10):
    """-> (info dict, tensors dict); a clear ModelError for anything missing or broken."""
    path = json_path(prefix)
    for attempt in range(attempts):
        info = _read_info(path)
        tensor_path = os.path.join(os.path.dirname(os.path.abspath(prefix)), info["tensors"])
        try:
            # once open, the file stays readable even if a trainer replaces it meanwhile
            with open(tensor_path, "rb") as f:
                tensors = _read_tensors(f, tensor_path, info.get("tensors_sha256"), map_location)
            break
        except FileNotFoundError:
            # a trainer may have saved a newer model between our two reads: read the JSON again
            if attempt == attempts - 1 or _current_tensor_file(prefix) == info["tensors"]:
                raise ModelError(f"{tensor_path}: the model's tensor file is missing (named in {path})") from None
        except OSError as e:
            raise ModelError(f"{tensor_path}: cannot read the model's tensor file ({e.strerror or e})") from None
    if not isinstance(tensors, dict) or "model" not in tensors:
        raise ModelError(f"{tensor_path}: not a tensor file of this model")
    return info, tensors


def _read_tensors(f, tensor_path, expected_sha256, map_location):
    """The tensors of an open tensor file, checked against the checksum saved with them
    (models saved before checksums were recorded have none: nothing to check then)."""
    if expected_sha256 is not None and _sha256(f) != expected_sha256:
        raise ModelError(f"{tensor_path}: the model's tensor file is damaged (its SHA-256 checksum differs "
                         f"from the one recorded when it was saved)")
    f.seek(0)
    try:
        return torch.load(f, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ModelError(f"{tensor_path}: the model's tensor file is damaged ({_one_line(e)})") from None


def _one_line(error, limit=300):
    text = " ".join(str(error).split())
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(error).__name__}: {text}"


def _read_info(path):
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise ModelError(f"{path}: no model here (train one first, or check the model prefix)") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ModelError(f"{path}: the model file is damaged or truncated ({e})") from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read the model file ({e.strerror or e})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelError(f"{path}: not a filejsonpytorch model file")
    version = info.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{path}: the model file has no valid format version ({version!r}): it is damaged")
    if version > VERSION:
        raise ModelError(f"{path}: model format version {info.get('version')} is newer than this program "
                         f"understands ({VERSION}); upgrade filejsonpytorch")
    for key in ("tensors", "schema", "vocabs", "arch"):
        if key not in info:
            raise ModelError(f"{path}: the model file lacks {key!r}")
    if not _is_plain_name(info["tensors"]):
        raise ModelError(f"{path}: 'tensors' must name a file next to it, not {info['tensors']!r}")
    for key in ("schema", "vocabs", "arch"):
        if not isinstance(info[key], dict):
            raise ModelError(f"{path}: {key!r} is not a JSON object: the model file is damaged")
    return info


