#!/usr/bin/env bash
# Uses the package the way a user does: `npm pack`, then a fresh Worker project
# (test/consumer-app: its own wrangler.jsonc and D1 binding) installs the
# tarball, installs its migrations with the package's bin, type-checks against
# it and runs its tests inside workerd with the test setup the guides show
# (docs/quickstart's vitest.config.ts, apply-migrations.ts and env.d.ts, byte
# for byte), the Quick start itself among them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
cp -R test/consumer-app "$work/app"
quickstart="$root/docs/quickstart"
cp "$quickstart/vitest.config.ts" "$work/app/vitest.config.ts"
cp "$quickstart/test/apply-migrations.ts" "$quickstart/test/env.d.ts" "$work/app/test/"
mkdir -p "$work/app/migrations"
cp "$quickstart/migrations/"*.sql "$work/app/migrations/"
cp "$quickstart/src/worker.ts" "$work/app/src/quickstart.ts"
sed 's#"../src/worker.js"#"../src/quickstart.js"#' "$quickstart/test/worker.test.ts" > "$work/app/test/quickstart.test.ts"
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

# The package's migrations after the app's own, as the Quick start says; a second run adds nothing.
npx checkpointstore-d1 migrations ./migrations
npx checkpointstore-d1 migrations ./migrations | grep -q "Nothing to add"

npx tsc --noEmit
npx vitest run
