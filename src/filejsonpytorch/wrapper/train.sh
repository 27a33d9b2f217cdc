#!/usr/bin/env bash
# Trains with the copy of filejsonpytorch in this directory, so that edits made here take effect.
# The GATE host calls: train.sh METAFILE MODELPREFIX [PARAMS...]
# This script writes only to stderr: stdout belongs to the Python program.

script="${BASH_SOURCE[0]}"
[[ $script == */* ]] || script="./$script"
here="$(CDPATH='' cd -- "${script%/*}" && pwd -P)" || exit 5
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"

. "$here/python.sh"
choose_python || exit 5
exec "$PY" -m filejsonpytorch.train "$@"
