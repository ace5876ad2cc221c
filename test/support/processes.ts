// Starting the example as a user does (`npm start`), for the tests that run it
// from plain Node: a free port, and waiting for a line of its output.
import { execFile, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const root = path.resolve(import.meta.dirname, "../..");

/** The environment wrangler runs in for the tests: no metrics, no fetch of Cloudflare's data. */
export const quietEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

/**
 * A fresh local state (D1 and Durable Object storage) for one run of the
 * example, with its migrations applied: pass it to `npm start -- --persist-to`,
 * so that what the test writes is never served by a later `npm start`.
 * (`npm start`'s own arguments go to `wrangler dev` only, hence the apply here.)
 */
export async function freshExampleState(prefix: string): Promise<string> {
  const state = await mkdtemp(path.join(tmpdir(), prefix));
  await promisify(execFile)(path.join(root, "node_modules", ".bin", "wrangler"), ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
    cwd: path.join(root, "example"),
    env: quietEnv,
  });
  return state;
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === "string") reject(new Error("no port"));
        else resolve(address.port);
      });
    });
  });
}

/** Resolves with the output so far once it contains `text`; rejects if the process exits first. */
export function waitForOutput(child: ChildProcess, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes(text)) resolve(output);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      reject(new Error(`npm start exited with ${String(code)} before "${text}":\n${output}`));
    });
  });
}
