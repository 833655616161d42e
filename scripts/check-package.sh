#!/usr/bin/env bash
# Packs caelum-scheduler as `npm pack` does and installs the tarball into an empty project, as
# another team would install it; there, the installed command prints its help, a fleet file
# written against caelum-scheduler/config type-checks (and a wrong one does not), and the
# command loads that TypeScript file. Needs a built dist/ (npm ci builds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$root/dist/cli.js" ]; then
  echo "check-package: dist/ is missing; run npm run build first" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check-package: $*" >&2; exit 1; }

# --ignore-scripts: dist/ is built already; prepare would build it again.
tarball=$(cd "$root" && npm pack --ignore-scripts --silent --pack-destination "$work" | tail -n 1)
echo "check-package: $tarball, $(du -k "$work/$tarball" | cut -f1) KiB, $(tar -tzf "$work/$tarball" | wc -l) files"
if tar -tzf "$work/$tarball" | grep -Eq '^package/(src|test|bench)/'; then fail "the tarball carries sources or tests"; fi

project="$work/project"
mkdir "$project" && cd "$project"
npm init -y >/dev/null
npm pkg set type=module
npm install --no-audit --no-fund --prefer-offline --loglevel=error "$work/$tarball" >/dev/null

help=$(npx --no-install caelum-scheduler --help)
[[ "$help" == "Usage: caelum-scheduler <command>"* ]] || fail "npx caelum-scheduler --help printed: $help"
echo "check-package: npx caelum-scheduler --help works in an empty project"

write_fleet() { # cpuSlots value
  cat > workers.config.ts <<TS
import { defineConfig } from 'caelum-scheduler/config';

const cmd = { command: ['true'], timeoutSeconds: 60 };
export default defineConfig({
  hosts: { 'box-1': { gpus: [], cpuSlots: $1 } },
  pools: { all: ['box-1'] },
  models: {},
  backtest: { pool: 'all', ...cmd },
  dataSync: { pool: 'all', ...cmd },
});
TS
}
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "module": "nodenext", "moduleResolution": "nodenext", "strict": true, "noEmit": true, "types": [] }, "include": ["workers.config.ts"] }
JSON
tsc() { node "$root/node_modules/typescript/bin/tsc" -p .; }
write_fleet "'two'"
if tsc >/dev/null; then fail "a fleet file with cpuSlots: 'two' type-checked"; fi
write_fleet 2
tsc || fail "the fleet file does not type-check against the installed declarations"
echo "check-package: a fleet file type-checks against caelum-scheduler/config (and a wrong one does not)"

status=0
out=$(CAELUM_METRICS_PORT=0 npx --no-install caelum-scheduler worker --host not-in-the-file 2>&1) || status=$?
[ "$status" = 1 ] && [[ "$out" == *'the config has box-1'* ]] || fail "the installed command did not load workers.config.ts (exit $status): $out"
echo "check-package: the installed command loads workers.config.ts"
