#!/usr/bin/env bash
# Trains with the copy of filejsonpytorch in this directory, so that edits made here take effect.
# The GATE host calls: train.sh METAFILE MODELPREFIX [PARAMS...]
# This script writes only to stderr: stdout belongs to the Python program.

script="${BASH_SOURCE[0]}"
[[ $script == */* ]] || script="./$script"
here="$(CDPATH='' cd -- "${script%/*}" && pwd -P)" || exit 5

. "$here/python.sh"
run_module train "$@"
