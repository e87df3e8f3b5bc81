#!/bin/sh
# Run `neurofm ARGS...`, or a launcher/shell given explicitly (torchrun, python, bash, sh).
set -e
case "$1" in
    torchrun|python|python3|bash|sh) exec "$@" ;;
    *) exec neurofm "$@" ;;
esac
