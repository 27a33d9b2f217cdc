#!/usr/bin/env bash
# Serves a trained model with the copy of filejsonpytorch in this directory, so that edits made
# here take effect. The GATE host calls: apply.sh MODELPREFIX METAFILE WRAPPERDIR [PARAMS...]
# This script writes only to stderr: stdout belongs to the Python program.

script="${BASH_SOURCE[0]}"
[[ $script == */* ]] || script="./$script"
here="$(CDPATH='' cd -- "${script%/*}" && pwd -P)" || exit 5

if [ $# -lt 3 ]; then
  echo "usage: $0 MODELPREFIX METAFILE WRAPPERDIR [PARAMS...]" >&2
  exit 2
fi
. "$here/python.sh"

# Answers every request line with the error $1 until end of input (or a STOP line): the host shows
# an error answer to the user, while an exit makes it fail at the first document with no message.
answer_errors() {
  local error="$1" line
  error="${error//:$'\n'  /: }"
  error="${error//$'\n'  /; }"
  error="$(printf '%s' "the model cannot be served: ${error//$'\n'/. }" | LC_ALL=C tr -c ' -~' '?')"
  error="${error//\\/\\\\}"
  error="${error//\"/\\\"}"
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line//[$'\r\t ']/}"
    [ "$line" = STOP ] && exit 0
    printf '{"status":"error","error":"%s"}\n' "$error"
  done
  exit 0
}

choose_python || answer_errors "$NO_PYTHON"
# WRAPPERDIR is only the host's way to say where this script lives; the program does not need it.
exec "$PY" -m filejsonpytorch.apply "$1" --metafile "$2" "${@:4}"
