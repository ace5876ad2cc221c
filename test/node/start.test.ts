import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { rm } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, freshExampleState, quietEnv, waitForOutput } from "../support/processes.js";

const root = path.resolve(import.meta.dirname, "../..");

// The README's `npm start` must really serve the example on 127.0.0.1.
describe("npm start", () => {
  let child: ChildProcess | undefined;
  let state: string | undefined;

  afterAll(async () => {
    if (child?.pid !== undefined) process.kill(-child.pid, "SIGTERM"); // the whole process group
    if (state !== undefined) await rm(state, { recursive: true, force: true });
  });

  it("applies the migrations and serves the example on 127.0.0.1", async () => {
    // A state of its own: the events this test appends are never served by your next `npm start`.
    state = await freshExampleState("npm-start-");
    const [port, inspector] = [await freePort(), await freePort()];
    child = spawn("npm", ["start", "--", "--port", String(port), "--inspector-port", String(inspector), "--persist-to", state], {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: quietEnv,
    });
    const output = await waitForOutput(child, `Ready on http://127.0.0.1:${port}`);
    expect(output).toMatch(/000\d_\w+\.sql|No migrations to apply/);

    const home = await fetch(`http://127.0.0.1:${port}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain("POST /events");

    const appended = await fetch(`http://127.0.0.1:${port}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ account: "npm-start", amount: 1 }),
    });
    expect(appended.status).toBe(201);
    // The account-history projection runs in a Durable Object's alarm, moments after the append.
    let history: { entries?: unknown[] } = {};
    for (let attempt = 0; attempt < 200 && (history.entries?.length ?? 0) === 0; attempt++) {
      const response = await fetch(`http://127.0.0.1:${port}/accounts/npm-start/history?limit=1`);
      if (response.status === 200) history = await response.json<{ entries?: unknown[] }>();
      else await response.body?.cancel();
    }
    expect(history.entries).toHaveLength(1);
    const admin = await fetch(`http://127.0.0.1:${port}/admin/checkpoints`);
    expect([401, 403]).toContain(admin.status);
  });
});
