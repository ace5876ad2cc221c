import { env } from "cloudflare:workers";

/** Collects an async iterable into an array. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Empties the checkpoints table of this test file's database. */
export async function clearCheckpoints(db: D1Database = env.DB): Promise<void> {
  await db.prepare("DELETE FROM checkpoints").run();
}

/** Every checkpoint row as stored, in name order. */
export async function storedRows(db: D1Database = env.DB): Promise<{ name: string; position: unknown }[]> {
  const { results } = await db
    .prepare("SELECT name, position FROM checkpoints ORDER BY name")
    .all<{ name: string; position: unknown }>();
  return results;
}
