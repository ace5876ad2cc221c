/// <reference types="node" />
// The `checkpointstore-d1` command line (docs/decisions/0023): parses the
// arguments, plans with migrations.ts, prints one line per package migration
// and a summary, and writes only when nothing is wrong. `bin.ts` runs it with
// the package's own migrations folder; tests call `main` with another one.
import path from "node:path";
import { NotAFolderError, planMigrations, writePlan, type ChangedCopy, type Plan, type Step } from "./migrations.js";

/** 0: done (or nothing to do); 1: an installed copy differs, a name would not sort last, or a write failed, and nothing was written; 2: bad arguments. */
export type ExitCode = 0 | 1 | 2;

/** What the command runs against: where its output goes and which migrations it installs. */
export interface MainOptions {
  /** The package's migrations folder. */
  readonly source: string;
  /** The folder relative paths are resolved against (default `process.cwd()`). */
  readonly cwd?: string;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** A parsed command line. */
export type Command = { readonly command: "help" } | { readonly command: "migrations"; readonly folder: string; readonly dryRun: boolean };

/** A command line that cannot be run; `main` prints it and exits with 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const USAGE = "Usage: checkpointstore-d1 migrations [folder] [--dry-run]";

export const HELP = `${USAGE}

Copies the SQL migrations of @synapse-es/checkpointstore-d1 into your app's
wrangler migrations folder (default ./migrations, created if missing), each
numbered after your highest migration: after 0001_events.sql and 0002_orders.sql
come 0003_checkpoints.sql, 0004_projection_operations.sql, ...

Copies already there are recognised by their first line (or by their content),
never by number, so run it again after every upgrade of the package: it adds only
the new migrations. It never renames, rewrites or removes a file: wrangler records
applied migrations by file name. A copy whose statements differ from the package's
is reported and nothing is written.

Options:
  --dry-run    print what would be added; write nothing
  -h, --help   print this help

Exit status: 0 done or nothing to do; 1 an installed copy differs from the
package's migration (or a write failed), nothing written; 2 bad arguments.`;

/** Parses the arguments after the command name; throws {@link UsageError}. */
export function parseArguments(argv: readonly string[]): Command {
  const positional: string[] = [];
  let dryRun = false;
  let help = false;
  let options = true;
  for (const arg of argv) {
    if (options && arg === "--") options = false;
    else if (options && (arg === "-h" || arg === "--help")) help = true;
    else if (options && arg === "--dry-run") dryRun = true;
    else if (options && arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg}`);
    else positional.push(arg);
  }
  const [command, ...rest] = positional;
  if (help || command === "help") return { command: "help" };
  if (command === undefined) throw new UsageError("missing command: the only one is migrations");
  if (command !== "migrations") throw new UsageError(`unknown command ${JSON.stringify(command)}: the only one is migrations`);
  if (rest.length > 1) throw new UsageError(`migrations takes one folder, got ${rest.length}: ${rest.join(" ")}`);
  const folder = rest[0] ?? "./migrations";
  if (folder.trim() === "") throw new UsageError("the migrations folder is an empty string");
  return { command: "migrations", folder, dryRun };
}

/** Why a copy is reported, and what to do about it; `restore` names the package's file. */
function why(reason: ChangedCopy, restore: string): string {
  switch (reason) {
    case "edited":
      return `edited after it was copied (its statements no longer match the sha256 on its first line): restore it from ${restore} and put your change in a new migration of your own`;
    case "package-changed":
      return "unchanged since it was copied, but this version of the package ships other statements for it: keep your copy (it is what your database applied) and report this, as a package migration must never change";
    case "unmarked-copy":
      return `has the migration's name but not its statements (an edited hand copy?): restore it from ${restore}`;
  }
}

/** The line printed for one step; `folder` as the user wrote it, `source` as shown to the user. */
function describe(step: Step, folder: string, source: string, mode: "write" | "dry-run" | "blocked"): string {
  const from = `(package's ${step.migration.file})`;
  const line = (label: string, file: string): string => `${label.padEnd(18)} ${file} ${from}`;
  switch (step.action) {
    case "add":
      return line({ write: "added", "dry-run": "would add", blocked: "not added" }[mode], path.join(folder, step.file));
    case "installed":
      return line("already installed", step.files.map((file) => path.join(folder, file)).join(", "));
    case "changed":
      return `${line("CHANGED", path.join(folder, step.file))}: ${why(step.why, path.join(source, step.migration.file))}`;
  }
}

function count(plan: Plan, action: Step["action"]): number {
  return plan.steps.filter((step) => step.action === action).length;
}

/** Runs the command line `argv` (the arguments after the command name) and returns the exit code; never throws. */
export async function main(argv: readonly string[], options: MainOptions): Promise<ExitCode> {
  const { out, err } = options;
  const cwd = options.cwd ?? process.cwd();
  let command: Command;
  let folder = "";
  let plan: Plan;
  try {
    command = parseArguments(argv);
    if (command.command === "help") {
      out(HELP);
      return 0;
    }
    folder = command.folder;
    const target = path.resolve(cwd, folder);
    plan = await planMigrations(options.source, target);
  } catch (error) {
    if (error instanceof UsageError || error instanceof NotAFolderError) {
      err(`error: ${error instanceof NotAFolderError ? `${folder} is not a folder` : error.message}`);
      err(`${USAGE}  (--help for more)`);
      return 2;
    }
    err(`error: ${String(error instanceof Error ? error.message : error)}`);
    return 1;
  }

  const shown = `${path.join(folder, ".")}${path.sep}`;
  const changed = count(plan, "changed");
  const blocked = changed > 0 || plan.problems.length > 0;
  const mode = blocked ? "blocked" : command.dryRun ? "dry-run" : "write";
  const added = count(plan, "add");
  const installed = count(plan, "installed");
  if (mode === "write" && added > 0) {
    try {
      await writePlan(plan);
    } catch (error) {
      err(`error: ${String(error instanceof Error ? error.message : error)}; nothing was written`);
      return 1;
    }
  }
  const source = path.relative(cwd, options.source) || ".";
  for (const step of plan.steps) out(describe(step, folder, source, mode));

  if (blocked) {
    for (const problem of plan.problems) err(`error: ${problem}`);
    const copies = changed === 1 ? "1 installed copy differs" : `${changed} installed copies differ`;
    err(changed > 0 ? `error: ${copies} from the package's migrations (see CHANGED above), so nothing was written` : "error: nothing was written");
    return 1;
  }
  const created = plan.exists ? "" : mode === "dry-run" ? ", would create the folder" : ", created the folder";
  if (mode === "dry-run") out(`Dry run: would add ${added}, ${installed} already installed in ${shown}${created}; nothing written.`);
  else if (added === 0) out(`Nothing to add: the package's ${installed} migrations are already installed in ${shown}.`);
  else out(`${added} added, ${installed} already installed in ${shown}${created}. Apply them with: npx wrangler d1 migrations apply <binding>`);
  return 0;
}
