import type { BenchTable } from "./harness.js";

declare module "vitest" {
  interface TaskMeta {
    /** A benchmark's result table, carried from workerd to the Node-side reporter. */
    benchTable?: BenchTable;
  }
}
