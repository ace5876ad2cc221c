#!/usr/bin/env node
/// <reference types="node" />
// The `checkpointstore-d1` bin (package.json "bin", built to dist/cli/bin.js):
// `npx checkpointstore-d1 migrations ./migrations` copies the package's
// migrations into the app's folder (docs/decisions/0023). The package's own
// migrations/ folder sits two levels up, from dist/cli/ as from src/cli/.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "./main.js";

const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../migrations");
process.exitCode = await main(process.argv.slice(2), {
  source,
  out: (line) => {
    process.stdout.write(`${line}\n`);
  },
  err: (line) => {
    process.stderr.write(`${line}\n`);
  },
});
