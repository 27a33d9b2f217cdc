# Sourced by train.sh, apply.sh and evaluate.sh (which set `here`, their directory): puts the copy of
# filejsonpytorch in this directory first on PYTHONPATH, so that edits made here take effect.
# choose_python sets PY to the first usable one of PYTHON_BIN, python3, python (Python 3.9 or newer
# with torch); otherwise it sets NO_PYTHON to why, logs that on stderr and returns 1.

export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"

# Python 2 must be able to run this too, so that it reports its version.
probe='import sys
if sys.version_info < (3, 9):
    print("is Python %d.%d, needs 3.9 or newer" % sys.version_info[:2])
else:
    import importlib.util
    print("OK" if importlib.util.find_spec("torch") else "cannot import torch")'

# Prints why $1 cannot run the backend; prints nothing when it can.
python_problem() {
  command -v -- "$1" >/dev/null 2>&1 || { echo "not found"; return; }
  local verdict
  if verdict="$("$1" -c "$probe" 2>/dev/null)" && [ "$verdict" = OK ]; then
    return
  fi
  echo "${verdict:-does not run as Python}"
}

# The PYTHON_BIN of FileJsonPyTorch.yaml in the data directory (this directory's parent, where the
# host installs it): the host exports it, a shell running the scripts by hand does not.
yaml_python_bin() {
  local datadir="${GATE_LF_DATA_DIR:-${here%/*}}" file
  for file in "$datadir/FileJsonPyTorch.yaml" "$datadir/FileJsonPyTorch.yaml.txt"; do
    if [ -f "$file" ]; then
      sed -n "/^PYTHON_BIN:/{s/^PYTHON_BIN:[[:space:]]*//;s/[[:space:]]#.*//;s/[[:space:]]*\$//;s/^\"\(.*\)\"\$/\1/;s/^'\(.*\)'\$/\1/;p;q;}" "$file"
      return
    fi
  done
}

choose_python() {
  local candidates=() candidate problem tried=""
  [ -n "$PYTHON_BIN" ] || PYTHON_BIN="$(yaml_python_bin)"
  [ -z "$PYTHON_BIN" ] || candidates+=("$PYTHON_BIN")
  for candidate in python3 python; do
    [ "$candidate" = "$PYTHON_BIN" ] || candidates+=("$candidate")
  done
  for candidate in "${candidates[@]}"; do
    problem="$(python_problem "$candidate")"
    if [ -z "$problem" ]; then
      [ -z "$tried" ] || echo "$0: using $candidate; not usable:$tried" >&2
      PY="$candidate"
      return 0
    fi
    tried="$tried"$'\n'"  $candidate: $problem"
  done
  NO_PYTHON="no usable Python (3.9 or newer, with torch installed). Tried:$tried"$'\n'"Set PYTHON_BIN (e.g. in FileJsonPyTorch.yaml in the data directory) to such an interpreter."
  echo "$0: $NO_PYTHON" >&2
  return 1
}

# Runs `python -m filejsonpytorch.$1` with the other arguments, or exits 5 without a usable Python.
run_module() {
  choose_python || exit 5
  exec "$PY" -m "filejsonpytorch.$1" "${@:2}"
}
