import { env } from "cloudflare:workers";

/** Empties the example's event log, read models, checkpoints, parked events, leases and holds: each test starts from nothing. */
export async function resetExample(): Promise<void> {
  await env.DB.batch([
    env.DB.prepare("DELETE FROM events"),
    env.DB.prepare("DELETE FROM balances"),
    env.DB.prepare("DELETE FROM daily_totals"),
    env.DB.prepare("DELETE FROM checkpoints"),
    env.DB.prepare("DELETE FROM parked_events"),
    env.DB.prepare("DELETE FROM projection_leases"),
    env.DB.prepare("DELETE FROM holds"),
  ]);
}
