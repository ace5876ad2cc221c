import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { CorruptCheckpointError, D1CheckpointStore } from "../src/index.js";
import { clearCheckpoints } from "./support/helpers.js";

// Rows written by other tools: names that are not valid UTF-8 text (bytes FE
// and FF, a truncated sequence), blobs, integers. D1 hands invalid text back
// with U+FFFD, which sorts elsewhere than the stored bytes.

/** At most `limit` items, so that a listing that never ends fails instead of hanging. */
async function take<T>(iterable: AsyncIterable<T>, limit = 50): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) {
    items.push(item);
    if (items.length >= limit) break;
  }
  return items;
}

beforeEach(async () => {
  await clearCheckpoints();
  await env.DB.batch([
    env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('a', 1), ('b', 2), ('zz', 3), ('\uFFFD ok', 4)"),
    env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (CAST(x'FE41' AS TEXT), 5)"), // invalid UTF-8
    env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (CAST(x'FF' AS TEXT), 6)"),
    env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (CAST(x'62E0A4' AS TEXT), 7)"), // 'b' + a truncated sequence
    env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (x'00FF', 8)"), // a blob
    env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (x'', 9)"), // an empty blob
    env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (42, 10)"), // an integer: TEXT affinity stores '42'
  ]);
});

const valid = ["42", "a", "b", "zz", "\uFFFD ok"];

describe("names written by other tools", () => {
  it.each([1, 2, 3, 1000])("names() with pageSize %i ends, yields each valid name once, and only strings", async (pageSize) => {
    const names = await take(new D1CheckpointStore(env.DB).names({ pageSize }));
    expect(names).toEqual(valid);
  });

  it.each([1, 4])("entries() with pageSize %i skips them the same way", async (pageSize) => {
    const entries = await take(new D1CheckpointStore(env.DB).entries({ pageSize }));
    expect(entries).toEqual([
      { name: "42", position: 10 },
      { name: "a", position: 1 },
      { name: "b", position: 2 },
      { name: "zz", position: 3 },
      { name: "\uFFFD ok", position: 4 },
    ]);
  });

  it("a prefix listing skips them too", async () => {
    await expect(take(new D1CheckpointStore(env.DB).names({ prefix: "b", pageSize: 1 }))).resolves.toEqual(["b"]);
  });

  it("a corrupt position is raised when its row is reached, after the rows before it", async () => {
    await env.DB.prepare("UPDATE checkpoints SET position = 'x' WHERE name = 'b'").run();
    const seen: string[] = [];
    const error = await (async () => {
      for await (const entry of new D1CheckpointStore(env.DB).entries({ pageSize: 10 })) seen.push(entry.name);
    })().catch((e: unknown) => e);
    expect(seen).toEqual(["42", "a"]);
    expect(error).toBeInstanceOf(CorruptCheckpointError);
    expect(error).toMatchObject({ checkpoint: "b", value: "x" });
    // and the listing resumes after it
    await expect(take(new D1CheckpointStore(env.DB).names({ after: "b" }))).resolves.toEqual(["zz", "\uFFFD ok"]);
  });
});
