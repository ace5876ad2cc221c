// Which role a projection version has in a run, read from its records: the
// live version runs under the projection's checkpoint, a rebuild under
// `name@version`, any other version not at all (decision 0020). Shared by
// ProjectionRunner and ProjectionGroup.
import type { OperationOptions, VersionedStore, VersionFence, VersionState } from "../core/store.js";
import { versionCheckpoint } from "../core/validate.js";

/** A projection's role in a run: its checkpoint and fence, or `undefined` when its version is neither live nor building. */
export type Role = { readonly checkpoint: string; readonly fence: VersionFence | undefined } | undefined;

/**
 * Each projection's role this run: an unversioned one runs under its name; a
 * versioned one as its version's state says. A projection's versions are read
 * in one query, so that its listings see one state of its records (never two
 * of them live across a switch).
 */
export async function rolesOf(
  store: object,
  projections: readonly { readonly name: string; readonly version?: number | undefined }[],
  options: OperationOptions,
): Promise<Role[]> {
  const records = new Map<string, readonly { readonly version: number; readonly state: VersionState }[]>();
  for (const { name, version } of projections) {
    if (version !== undefined && !records.has(name)) records.set(name, await (store as VersionedStore).versions(name, options));
  }
  return projections.map(({ name, version }): Role => {
    if (version === undefined) return { checkpoint: name, fence: undefined };
    const versions = records.get(name) ?? [];
    // Without records, version 1 is live.
    const state = versions.find((v) => v.version === version)?.state ?? (versions.length === 0 && version === 1 ? "live" : undefined);
    if (state === "live") return { checkpoint: name, fence: { name, version, state } };
    if (state === "building") return { checkpoint: versionCheckpoint(name, version), fence: { name, version, state } };
    return undefined;
  });
}
