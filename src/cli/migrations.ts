/// <reference types="node" />
// Installing the package's SQL migrations into an app's wrangler migrations
// folder (docs/decisions/0023): each copy is numbered after the app's highest
// migration and starts with a marker line naming the package migration and the
// sha256 of its statements. Copies are recognised by that marker (or, for hand
// copies, by content), never by number or file name, and never renamed or
// rewritten: wrangler records applied migrations by file name. Plain Node, no
// dependencies; `main.ts` is the command line around it. Nothing in the
// library imports this folder.
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";

/** One of the package's migrations: `0001_checkpoints.sql` has id `0001_checkpoints` and name `checkpoints`. */
export interface PackageMigration {
  readonly file: string;
  readonly id: string;
  readonly name: string;
  /** The file's bytes as UTF-8, copied verbatim after the marker. */
  readonly text: string;
  /** sha256 (hex) of the statements, line endings and trailing white space normalised. */
  readonly sha256: string;
}

/** Why an installed copy is not the package's migration. */
export type ChangedCopy =
  /** The copy's statements no longer match the sha256 its marker recorded: someone edited it. */
  | "edited"
  /** The copy matches its marker, but this version of the package ships other statements under the same id. */
  | "package-changed"
  /** A copy without a marker that has the migration's name but other statements (an edited hand copy). */
  | "unmarked-copy";

/** What happens to one package migration. */
export type Step =
  | { readonly action: "add"; readonly migration: PackageMigration; readonly file: string }
  | { readonly action: "installed"; readonly migration: PackageMigration; readonly files: readonly string[]; readonly by: "marker" | "content" }
  | { readonly action: "changed"; readonly migration: PackageMigration; readonly file: string; readonly why: ChangedCopy };

/** The work for one app folder, computed before anything is written. */
export interface Plan {
  /** The app's migrations folder, absolute. */
  readonly target: string;
  /** False when the folder does not exist yet (writing creates it). */
  readonly exists: boolean;
  /** One step per package migration, in the package's order. */
  readonly steps: readonly Step[];
  /** Why the plan must not be written (a new name that would not sort last); empty when it may. */
  readonly problems: readonly string[];
}

/** The first line of every copy: the package migration it is, and the sha256 of its statements. */
export const MARKER = /^-- @synapse-es\/checkpointstore-d1 migration (\S+) sha256:([0-9a-f]{64})$/;
/** The second line of every copy, for whoever opens the file. */
export const NOTE = "-- Copied from the package by npx checkpointstore-d1 migrations: never edit or rename this file (wrangler records applied migrations by file name).";

const PACKAGE_FILE = /^(\d{4})_([A-Za-z0-9][\w.-]*)\.sql$/;

/** sha256 (hex) of SQL text, with CRLF read as LF and trailing white space ignored. */
export function sha256(text: string): string {
  return createHash("sha256").update(text.replace(/\r\n/g, "\n").trimEnd()).digest("hex");
}

/** What the CLI writes for a migration: the marker, the note, then the package file verbatim. */
export function copyText(migration: PackageMigration): string {
  return `-- @synapse-es/checkpointstore-d1 migration ${migration.id} sha256:${migration.sha256}\n${NOTE}\n${migration.text}`;
}

/** The package's migrations in `source` (`NNNN_name.sql`), in file-name order. */
export async function readPackageMigrations(source: string): Promise<PackageMigration[]> {
  const files = (await readdir(source)).filter((file) => PACKAGE_FILE.test(file)).sort();
  if (files.length === 0) throw new Error(`no migrations in ${source}`);
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(path.join(source, file), "utf8");
      const id = file.slice(0, -".sql".length);
      return { file, id, name: id.slice("0000_".length), text, sha256: sha256(text) };
    }),
  );
}

/** An `.sql` file of the app's folder, as far as recognising copies needs it. */
interface AppFile {
  readonly file: string;
  /** The marker's id and recorded sha256, when the first line is one. */
  readonly marker: { readonly id: string; readonly sha256: string } | undefined;
  /** sha256 of what follows the marker and note (the whole file when unmarked). */
  readonly bodySha256: string;
}

async function readAppFiles(target: string): Promise<AppFile[]> {
  const entries = await readdir(target, { withFileTypes: true });
  const files = entries.filter((entry) => entry.isFile() && entry.name.endsWith(".sql")).map((entry) => entry.name).sort();
  return Promise.all(
    files.map(async (file): Promise<AppFile> => {
      const text = await readFile(path.join(target, file), "utf8");
      const lines = text.split("\n");
      const match = MARKER.exec((lines[0] ?? "").replace(/\r$/, ""));
      if (match?.[1] === undefined || match[2] === undefined) return { file, marker: undefined, bodySha256: sha256(text) };
      const skip = (lines[1] ?? "").trimEnd() === NOTE ? 2 : 1;
      return { file, marker: { id: match[1], sha256: match[2] }, bodySha256: sha256(lines.slice(skip).join("\n")) };
    }),
  );
}

/** The number wrangler reads from a migration's name: its leading digits, as `wrangler d1 migrations create` does. */
function numberOf(file: string): number {
  const digits = /^\d+/.exec(file);
  return digits === null ? 0 : Number(digits[0]);
}

/** What the package migration is in the app: installed (by marker, else by content), changed, or missing. */
function recognise(migration: PackageMigration, app: readonly AppFile[]): Step | undefined {
  const marked = app.filter((file) => file.marker?.id === migration.id);
  for (const file of marked) {
    if (file.bodySha256 !== migration.sha256) {
      const why = file.bodySha256 === file.marker?.sha256 ? "package-changed" : "edited";
      return { action: "changed", migration, file: file.file, why };
    }
  }
  if (marked.length > 0) return { action: "installed", migration, files: marked.map((file) => file.file), by: "marker" };
  const unmarked = app.filter((file) => file.marker === undefined);
  const same = unmarked.filter((file) => file.bodySha256 === migration.sha256);
  if (same.length > 0) return { action: "installed", migration, files: same.map((file) => file.file), by: "content" };
  const named = unmarked.find((file) => file.file.replace(/^\d+_/, "") === `${migration.name}.sql`);
  if (named !== undefined) return { action: "changed", migration, file: named.file, why: "unmarked-copy" };
  return undefined;
}

/**
 * Plans installing the migrations of `source` into the app folder `target`:
 * reads both, writes nothing. New copies are numbered after the highest number
 * in `target` (4 digits, the package file's name kept), in the package's order.
 */
export async function planMigrations(source: string, target: string): Promise<Plan> {
  const migrations = await readPackageMigrations(source);
  const exists = await isFolder(target);
  const app = exists ? await readAppFiles(target) : [];
  let next = Math.max(0, ...app.map((file) => numberOf(file.file))) + 1;
  const steps = migrations.map((migration): Step => {
    const known = recognise(migration, app);
    if (known !== undefined) return known;
    return { action: "add", migration, file: `${String(next++).padStart(4, "0")}_${migration.name}.sql` };
  });
  // wrangler applies the unapplied migrations in file-name order: a new copy must sort after every file there is.
  const last = app.map((file) => file.file).sort().at(-1);
  const problems = steps.flatMap((step) =>
    step.action === "add" && last !== undefined && step.file <= last
      ? [`${step.file} would sort before ${last}, and wrangler applies migrations in file-name order`]
      : [],
  );
  return { target, exists, steps, problems };
}

/** True when `target` is a folder, false when nothing is there; throws when it is something else. */
export async function isFolder(target: string): Promise<boolean> {
  try {
    if ((await stat(target)).isDirectory()) return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  throw new NotAFolderError(target);
}

/** The app's migrations path exists but is a file (or something else): a bad argument. */
export class NotAFolderError extends Error {
  constructor(readonly target: string) {
    super(`${target} is not a folder`);
    this.name = "NotAFolderError";
  }
}

/**
 * Writes the plan's new copies (creating the folder if needed), each with
 * `wx` so that no file is ever overwritten. On any failure it removes what it
 * wrote (and the folder, if it created it) and rethrows: all or nothing.
 * Returns the paths written.
 */
export async function writePlan(plan: Plan): Promise<string[]> {
  if (plan.problems.length > 0 || plan.steps.some((step) => step.action === "changed")) {
    throw new Error("refusing to write a plan with changed copies or problems");
  }
  const created = await mkdir(plan.target, { recursive: true });
  const written: string[] = [];
  try {
    for (const step of plan.steps) {
      if (step.action !== "add") continue;
      const file = path.join(plan.target, step.file);
      const handle = await open(file, "wx");
      written.push(file);
      try {
        await handle.writeFile(copyText(step.migration), "utf8");
      } finally {
        await handle.close();
      }
    }
  } catch (error) {
    await Promise.all(written.map((file) => rm(file, { force: true })));
    if (created !== undefined) await rm(created, { recursive: true, force: true });
    throw error;
  }
  return written;
}
