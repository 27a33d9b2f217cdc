"""Building a network: the module an architecture names, found by its file name
(`modules/NAME.py`, user modules first), or an ensemble of them."""

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from .ensemble import Ensemble
from .errors import ModelError, UsageError
from .modules.base import LFModule


def module_search_path():
    """User modules first: `$WRAPPER_HOME/modules/`, the `modules/` folder beside this
    package (the wrapper directory's, when run from there), then the package's own."""
    package = Path(__file__).resolve().parent
    paths = [package.parent / "modules", package / "modules"]
    if os.environ.get("WRAPPER_HOME"):
        paths.insert(0, Path(os.environ["WRAPPER_HOME"]) / "modules")
    return list(dict.fromkeys(paths))


def find_module(name):
    """The LFModule subclass defined in modules/NAME.py."""
    if not name.isidentifier():
        raise UsageError(f"--module {name!r}: a module name is a Python file name without .py")
    for directory in module_search_path():
        path = directory / f"{name}.py"
        if path.is_file():
            return _module_class(_import_file(name, path), path)
    raise ModelError(f"module {name!r} not found in {', '.join(map(str, module_search_path()))}; "
                     f"available: {', '.join(available_modules())}")


def available_modules():
    """The names of the files on the search path that define a module (not the building
    blocks beside them: base, encoder, crf)."""
    names = set()
    for path in (p for d in module_search_path() if d.is_dir() for p in d.glob("*.py")):
        try:
            if not path.stem.startswith("_") and _own_modules(_import_file(path.stem, path)):
                names.add(path.stem)
        except Exception:  # a broken user file is reported when it is asked for
            continue
    return sorted(names)


def _import_file(name, path):
    package = "filejsonpytorch.modules"
    if path.parent == Path(__file__).resolve().parent / "modules":
        return importlib.import_module(f"{package}.{name}")
    spec = importlib.util.spec_from_file_location(f"{package}.user_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise ModelError(f"{path}: the module could not be loaded: {type(e).__name__}: {e}") from e
    return module


def _own_modules(module):
    """The LFModule subclasses a Python module defines itself (not those it imports)."""
    return [c for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, LFModule) and c is not LFModule and c.__module__ == module.__name__]


def _module_class(module, path):
    classes = _own_modules(module)
    if len(classes) != 1:
        raise ModelError(f"{path}: expected one LFModule subclass, found {len(classes)}"
                         + (" (a building block, not a module)" if not classes else ""))
    return classes[0]


def build_network(arch):
    """The module an Architecture names, or an Ensemble of `arch.ensemble` of them."""
    module_class = find_module(arch.module)
    if arch.ensemble == 1:
        return module_class(arch)
    return Ensemble(arch, [module_class(arch) for _ in range(arch.ensemble)])
