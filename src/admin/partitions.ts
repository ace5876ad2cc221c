// The Durable Object partitions the overview lists, from the caller's hook:
// what it answers is checked here, so that a hook or an RPC answer that is
// junk shows up as an error row naming the hook, never as a crashed page.
import { messageOf } from "../core/errors.js";
import type { ProjectionStatus } from "../sql/status.js";
import { typeName } from "../core/validate.js";

/** A Durable Object partition's row: its projections' statuses, or why they could not be read. */
export interface PartitionView {
  readonly name: string;
  readonly statuses: readonly ProjectionStatus[];
  readonly error: string | undefined;
}

/** The hook's row when its answer cannot be used at all. */
const HOOK = "(the partitions hook)";
/** The hook, as the option that gave it. */
const OPTION = "options.partitions";

function failed(name: string, error: string): PartitionView {
  return { name, statuses: [], error };
}

/**
 * The partitions' statuses, in the hook's order. The hook failing or
 * answering something other than an array is one error row; a partition
 * that is not `{ name: string, statuses: function }`, or whose statuses fail
 * or are not an array of objects, is an error row of its own.
 */
export async function partitionViews(list: () => Promise<readonly unknown[]>): Promise<PartitionView[]> {
  let answer: unknown;
  try {
    answer = await list();
  } catch (error) {
    return [failed(HOOK, messageOf(error))];
  }
  if (!Array.isArray(answer)) return [failed(HOOK, `${OPTION} must answer an array of { name, statuses }, got ${typeName(answer)}`)];
  const partitions = answer as unknown[];
  return Promise.all(partitions.map((partition, index) => partitionView(partition, index)));
}

async function partitionView(partition: unknown, index: number): Promise<PartitionView> {
  const label = `(partition ${index})`;
  if (typeof partition !== "object" || partition === null) return failed(label, `${OPTION}[${index}] must be an object with name and statuses, got ${typeName(partition)}`);
  const { name, statuses } = partition as { readonly name?: unknown; readonly statuses?: unknown };
  if (typeof name !== "string") return failed(label, `${OPTION}[${index}].name must be a string, got ${typeName(name)}`);
  if (typeof statuses !== "function") return failed(name, `${OPTION}[${index}].statuses must be a function, got ${typeName(statuses)}`);
  let listed: unknown;
  try {
    listed = await (statuses as () => Promise<unknown>).call(partition);
  } catch (error) {
    return failed(name, messageOf(error));
  }
  if (!Array.isArray(listed)) return failed(name, `statuses() of ${name} must answer an array of statuses, got ${typeName(listed)}`);
  const rows: ProjectionStatus[] = [];
  for (const status of listed as unknown[]) {
    if (typeof status !== "object" || status === null) return failed(name, `statuses() of ${name} answered a status that is not an object (${typeName(status)})`);
    // An RPC answer nothing has checked: names made text, so that the page can escape them (numbers are checked where shown).
    const given = status as ProjectionStatus & { readonly name: unknown };
    rows.push({ ...given, name: typeof given.name === "string" ? given.name : String(given.name) });
  }
  return { name, statuses: rows, error: undefined };
}
