#!/usr/bin/env bash
# Thin wrapper: `bash infra/stack.sh up|down|status|env|fetch|clean [--clean]`.
# Same as `python -m infra ...` with the project's venv; see infra/stack.py.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$repo/.venv/bin/python"
if [[ ! -x "$py" ]]; then
    echo "infra: no virtualenv at $repo/.venv -- run \`bash infra/dev.sh setup\` first" >&2
    exit 2
fi
cd "$repo"
exec "$py" -m infra "$@"
