# Sourced by train.sh and apply.sh: sets PY to the first usable one of PYTHON_BIN, python3,
# python (Python 3.9 or newer with torch), or explains on stderr and exits 5.

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

# Sets PY to the first usable one of PYTHON_BIN, python3, python; otherwise explains and exits 3.
choose_python() {
  local candidates=() candidate problem tried=""
  [ -z "$PYTHON_BIN" ] || candidates+=("$PYTHON_BIN")
  for candidate in python3 python; do
    [ "$candidate" = "$PYTHON_BIN" ] || candidates+=("$candidate")
  done
  for candidate in "${candidates[@]}"; do
    problem="$(python_problem "$candidate")"
    if [ -z "$problem" ]; then
      [ -z "$tried" ] || echo "$0: using $candidate; not usable:$tried" >&2
      PY="$candidate"
      return
    fi
    tried="$tried"$'\n'"  $candidate: $problem"
  done
  echo "$0: no usable Python (3.9 or newer, with torch installed). Tried:$tried" >&2
  echo "Set PYTHON_BIN (e.g. in FileJsonPyTorch.yaml in the data directory) to such an interpreter." >&2
  exit 5
}

choose_python
