#!/usr/bin/env bash
# Uses the package the way a user does: `npm pack`, then a fresh Worker project
# (test/consumer-app: its own wrangler.toml and D1 binding) installs the
# tarball, type-checks against it and runs a test inside workerd.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
cp -R test/consumer-app "$work/app"
cd "$work/app"

# The user's own dev dependencies, at the versions this repository pins.
pin() { node -p "require('$root/package.json').devDependencies['$1']"; }
cat > package.json <<JSON
{ "name": "consumer-app", "private": true, "type": "module" }
JSON
npm install --no-audit --no-fund --prefer-offline --save-exact -D \
  "@cloudflare/vitest-plugin@$(pin @cloudflare/vitest-plugin)" \
  "@cloudflare/workers-types@$(pin @cloudflare/workers-types)" \
  "@types/node@$(pin @types/node)" \
  "drizzle-orm@$(pin drizzle-orm)" \
  "kysely@$(pin kysely)" \
  "typescript@$(pin typescript)" \
  "vitest@$(pin vitest)"
npm install --no-audit --no-fund --prefer-offline "$work/$tarball"

npx tsc --noEmit
npx vitest run
