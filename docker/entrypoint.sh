#!/bin/sh
# First start: copy the bundled library into the data volume, so /add-source and edits persist.
set -eu
knowledge=${HINGE_KNOWLEDGE_DIR:-/data/knowledge}
bundled=${HINGE_BUNDLED_KNOWLEDGE:-/app/knowledge}
if [ ! -d "$knowledge" ] && [ -d "$bundled" ]; then
    mkdir -p "$(dirname "$knowledge")"
    cp -r "$bundled" "$knowledge"
fi
exec "$@"
