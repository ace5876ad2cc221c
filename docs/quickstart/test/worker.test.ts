import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import worker from "../src/worker.js";

async function post(account: string, amount: number): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request("http://example.com/events", { method: "POST", body: JSON.stringify({ account, amount }) }),
    env,
    ctx,
  );
  await waitOnExecutionContext(ctx); // the projection run the append started
  return response;
}

it("every appended event is in the balances once, whether the append's run or the cron applied it", async () => {
  expect((await post("alice", 5)).status).toBe(201);
  await post("bob", 2);
  await post("alice", -1);
  // Appends whose runs were lost (here: written around the Worker) are picked up by the cron.
  await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('bob', 10), ('carol', 7)").run();
  await worker.scheduled(createScheduledController(), env);
  await worker.scheduled(createScheduledController(), env); // a second tick applies nothing again
  const response = await worker.fetch(new Request("http://example.com/balances"), env, createExecutionContext());
  expect(await response.json()).toEqual([
    { account: "alice", balance: 4 },
    { account: "bob", balance: 12 },
    { account: "carol", balance: 7 },
  ]);
});
