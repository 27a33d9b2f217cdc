#!/usr/bin/env bash
# Serves a trained model with the copy of filejsonpytorch in this directory, so that edits made
# here take effect. The GATE host calls: apply.sh MODELPREFIX METAFILE WRAPPERDIR [PARAMS...]
# This script writes only to stderr: stdout belongs to the Python program.

script="${BASH_SOURCE[0]}"
[[ $script == */* ]] || script="./$script"
here="$(CDPATH='' cd -- "${script%/*}" && pwd -P)" || exit 5
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"

if [ $# -lt 3 ]; then
  echo "usage: $0 MODELPREFIX METAFILE WRAPPERDIR [PARAMS...]" >&2
  exit 2
fi
. "$here/python.sh"
# WRAPPERDIR is only the host's way to say where this script lives; the program does not need it.
exec "$PY" -m filejsonpytorch.apply "$1" --metafile "$2" "${@:4}"
