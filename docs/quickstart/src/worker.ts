import { D1CheckpointStore, ProjectionRunner, jsonRowStatements } from "@synapse-es/checkpointstore-d1";

interface LedgerEvent {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
}

// The projection: the balances read model, one statement per batch (set-based, see docs/guides/projections.md).
function balances(db: D1Database): ProjectionRunner<LedgerEvent> {
  return new ProjectionRunner<LedgerEvent>({
    name: "balances",
    store: new D1CheckpointStore(db),
    batchSize: 1000,
    lease: true, // one run at a time: an append's run while another is under way only leaves it a note
    eventsQuery: (after, limit) =>
      db.prepare("SELECT position, account, amount FROM events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
    project: (events) =>
      jsonRowStatements(
        db,
        `INSERT INTO balances (account, balance)
         SELECT value ->> 'account', SUM(value ->> 'amount') FROM json_each(?1) WHERE true GROUP BY 1
         ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance`,
        events.map(({ account, amount }) => ({ account, amount })),
      ),
  });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/events") {
      const { account, amount } = await request.json<{ account: string; amount: number }>();
      const appended = await env.DB.prepare("INSERT INTO events (account, amount) VALUES (?1, ?2) RETURNING position")
        .bind(account, amount)
        .first<{ position: number }>();
      ctx.waitUntil(balances(env.DB).run({ budget: 50 })); // fresh soon after the append; the cron catches up on anything missed
      return Response.json(appended, { status: 201 });
    }
    if (url.pathname === "/balances") {
      return Response.json((await env.DB.prepare("SELECT account, balance FROM balances ORDER BY account").all()).results);
    }
    return new Response("not found", { status: 404 });
  },

  // Every minute (triggers.crons): resume exactly where the last run stopped, within D1's queries per invocation.
  async scheduled(_controller, env) {
    await balances(env.DB).run({ budget: 900 });
  },
} satisfies ExportedHandler<Env>;
