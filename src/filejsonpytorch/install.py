"""Create the wrapper directory the GATE host runs: DATADIR/FileJsonPyTorch.

It holds the start scripts and a copy of this package, so that users can edit the
network code for one data directory. An existing wrapper directory is never touched.
"""

import argparse
import shlex
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import filejsonpytorch
from filejsonpytorch.errors import EnvironmentProblem, UsageError, UserError

WRAPPER_NAME = "FileJsonPyTorch"
START_SCRIPTS = ("train.sh", "apply.sh", "evaluate.sh")
EXECUTABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def package_dir():
    return Path(filejsonpytorch.__file__).resolve().parent


def install(datadir, name=WRAPPER_NAME) -> Path:
    """Create DATADIR/NAME with the scripts and a copy of the package; return its path."""
    datadir = Path(datadir).resolve()
    target = datadir / name
    if target.exists() or target.is_symlink():
        raise UsageError(refusal_message(target))
    if not datadir.is_dir():
        raise UsageError(f"data directory {datadir} does not exist")
    try:
        build_then_rename(target)
    except OSError as error:
        raise EnvironmentProblem(f"could not create {target}: {error}") from error
    return target


def refusal_message(target):
    return (
        f"{target} already exists and was left as it is: it may hold your edits to the "
        f"network code. To upgrade, move it away (or delete it), run "
        f"filejsonpytorch-install {shlex.quote(str(target.parent))} again, then copy your edits back in."
    )


def build_then_rename(target):
    """Fill a directory beside the target, so that a failure leaves no half-made wrapper."""
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as staging:
        # mkdtemp's directory is private (0700); the inner one gets the usual permissions.
        built = Path(staging) / target.name
        fill_wrapper(built)
        built.rename(target)


def fill_wrapper(wrapper):
    source = package_dir()
    shutil.copytree(source / "wrapper", wrapper)
    for script in START_SCRIPTS:
        path = wrapper / script
        path.chmod(path.stat().st_mode | EXECUTABLE)
    shutil.copytree(
        source,
        wrapper / source.name,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    # the place for the user's own modules (--module NAME finds modules/NAME.py first)
    (wrapper / "modules").mkdir()
    shutil.copy(source / "modules" / "template.py", wrapper / "modules" / "template.py")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="filejsonpytorch-install",
        description="Create the FileJsonPyTorch wrapper directory that GATE runs, in DATADIR. "
        "An existing one is never overwritten.",
    )
    parser.add_argument("datadir", help="the data directory (where GATE exports crvd.meta.json)")
    parser.add_argument(
        "--name", default=WRAPPER_NAME, help=f"name of the directory to create (default: {WRAPPER_NAME})"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        target = install(args.datadir, args.name)
    except UserError as error:
        print(f"filejsonpytorch-install: {error}", file=sys.stderr)
        return error.exit_code
    print(f"installed {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
