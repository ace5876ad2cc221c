// The bindings the Worker and its tests see (`wrangler types` can generate the first part).
declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}
type Env = Cloudflare.Env;
