#!/usr/bin/env bash
# Scores a trained model on a labeled LF data file with the copy of filejsonpytorch in this directory
# (and its modules/, as train.sh and apply.sh do): evaluate.sh MODELPREFIX DATAFILE [--json]

script="${BASH_SOURCE[0]}"
[[ $script == */* ]] || script="./$script"
here="$(CDPATH='' cd -- "${script%/*}" && pwd -P)" || exit 5

. "$here/python.sh"
run_module evaluate "$@"
