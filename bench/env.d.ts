// The binding the daemon suite (bench/daemon.ts) uses, beside the test suites' (test/env.d.ts).
declare namespace Cloudflare {
  interface Env {
    BENCH_DAEMON: DurableObjectNamespace<import("./daemon-object.js").BenchDaemon>;
  }
}
