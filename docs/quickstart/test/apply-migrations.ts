// Runs before every test file: the app's migrations (with the package's, installed by the bin) on the test database.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
