/**
 * What `npm run package` bakes into the bundle (esbuild `define`): the version and commit it was built
 * from and the worker sources the single executable writes out for worker_threads. null when running
 * from a checkout (tsc output or vitest): then version.ts reads package.json and git instead.
 */
export interface BuildInfo {
  version: string;
  /** `git rev-parse --short=12 HEAD`, with `-dirty` when the tree had changes; `unknown` without git. */
  commit: string;
  /** Worker name -> CommonJS source of its bundle (`piscina-worker`, `scan-worker`). */
  workers: Record<string, string>;
}

declare const __SYSAK_BUILD__: BuildInfo | undefined;

export const BUILD: BuildInfo | null = typeof __SYSAK_BUILD__ === 'undefined' ? null : __SYSAK_BUILD__;
