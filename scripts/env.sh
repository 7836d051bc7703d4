# Sourced by the other scripts: makes Node >= 22 and pnpm available on PATH,
# installing them into the git-ignored .tools/ folder when the machine lacks them.
# Node comes from the npm package `node@24`, pnpm from the npm package `pnpm`.
set -euo pipefail
STOWAGE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$STOWAGE_ROOT/.tools"
NODE_PKG_VERSION="24"
PNPM_VERSION="10.34.8"

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -x "$TOOLS/node/node_modules/.bin/node" ]; then
  export PATH="$TOOLS/node/node_modules/.bin:$PATH"
fi
if [ "$(node_major)" -lt 22 ]; then
  echo "stowage: Node $(node --version 2>/dev/null || echo missing) is older than 22; installing node@$NODE_PKG_VERSION into .tools/node" >&2
  mkdir -p "$TOOLS/node"
  npm install --prefix "$TOOLS/node" --no-save --no-audit --no-fund --loglevel=error "node@$NODE_PKG_VERSION" >&2
  export PATH="$TOOLS/node/node_modules/.bin:$PATH"
fi
if [ ! -x "$TOOLS/pnpm/node_modules/.bin/pnpm" ]; then
  echo "stowage: installing pnpm@$PNPM_VERSION into .tools/pnpm" >&2
  mkdir -p "$TOOLS/pnpm"
  npm install --prefix "$TOOLS/pnpm" --no-save --no-audit --no-fund --loglevel=error "pnpm@$PNPM_VERSION" >&2
fi
export PATH="$TOOLS/pnpm/node_modules/.bin:$PATH"
export npm_config_update_notifier=false
