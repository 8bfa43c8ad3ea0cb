/** True when `root`/dist is a complete build of the files under `root` as they are now (see build-state.mjs). */
export function isBuildCurrent(root: string): boolean;
