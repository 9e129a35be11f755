#!/bin/sh
# The image's entrypoint. Upgrades are defined by where each kind of document lives:
#   - the shipped library is read straight from the image (HINGE_KNOWLEDGE_DIR=/app/knowledge), so a
#     new image brings its new and changed documents with it and nothing has to be copied;
#   - the team's own documents (/add-source uploads, coach answers) live in the data volume, in
#     HINGE_LIBRARY_DIR (default $HINGE_DATA_DIR/library), which no upgrade touches.
# The index is rebuilt from both when their files change (the bot checks at start).
#
# Volumes made by older images held a copy of the shipped library in $HINGE_DATA_DIR/knowledge, and
# uploads were written into it. Once, on the first start of a newer image: every file there that the
# image does not ship (by its path) is copied into the team's folder (an existing file there wins),
# and the old copy is renamed knowledge.before-upgrade, kept for the operator to delete.
set -eu
data=${HINGE_DATA_DIR:-/data}
shipped=${HINGE_KNOWLEDGE_DIR:-/app/knowledge}
team=${HINGE_LIBRARY_DIR:-$data/library}
old="$data/knowledge"

if [ -d "$old" ] && [ "$old" != "$shipped" ] && [ ! -e "$data/knowledge.before-upgrade" ]; then
    (cd "$old" && find . -type f) | while IFS= read -r file; do
        file=${file#./}
        if [ ! -e "$shipped/$file" ] && [ ! -e "$team/$file" ]; then
            mkdir -p "$(dirname "$team/$file")"
            cp -p "$old/$file" "$team/$file"
            echo "hinge-entrypoint: kept the team's $file in $team" >&2
        fi
    done
    mv "$old" "$data/knowledge.before-upgrade"
fi
mkdir -p "$team"
exec "$@"
