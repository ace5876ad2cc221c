import { D1CheckpointStore, type LoadResult } from "@synapse-es/checkpointstore-d1";

export interface Env {
  DB: D1Database;
}

export default {
  async fetch(request, env): Promise<Response> {
    const store = new D1CheckpointStore(env.DB);
    const name = new URL(request.url).pathname.slice(1) || "default";
    if (request.method === "POST") await store.save(name, Number(await request.text()));
    const checkpoint: LoadResult = await store.load(name);
    return Response.json(checkpoint);
  },
} satisfies ExportedHandler<Env>;
