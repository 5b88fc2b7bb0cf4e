/**
 * Worker modules of the single executable. worker_threads (and so piscina) load a worker from a file,
 * and a single executable has no files beside it: the bundle carries each worker's source, and the first
 * pool writes them once into a private directory (mkdtemp: mode 0700, so no other user can swap the code
 * a root process runs), removed when the process exits, on SIGINT/SIGTERM too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemleakError } from '../errors.js';
import { BUILD } from './build-info.js';

let dir: string | null = null;
const written = new Set<string>();

function removeDir(): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
}

/**
 * A signal nobody else handles would kill the process without 'exit': remove the directory, then die
 * of the signal as before (the shell sees 130/143). When another handler owns the signal (live mode
 * stops tracing, restores tracefs and lets the process end normally), the 'exit' handler removes it.
 */
function onSignal(sig: NodeJS.Signals): void {
  if (process.listenerCount(sig) > 1) return;
  removeDir();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.kill(process.pid, sig);
}

function privateDir(): string {
  if (dir) return dir;
  // Handlers first: a signal between mkdtemp and them would kill the process and leave the directory.
  process.once('exit', removeDir);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    dir = mkdtempSync(join(tmpdir(), 'sysak-workers-'));
  } catch (e) {
    throw new MemleakError('E_IO', `cannot create a directory for the scan workers in ${tmpdir()} (set TMPDIR to a writable directory): ${(e as Error).message}`);
  }
  return dir;
}

/** The file of an embedded worker, written on first use; null outside a packaged build (workers are files then). */
export function embeddedWorkerFile(name: string): string | null {
  if (!BUILD) return null;
  const source = BUILD.workers[name];
  if (source === undefined) throw new MemleakError('E_INTERNAL', `the executable carries no worker ${name}`);
  const file = join(privateDir(), `${name}.cjs`);
  if (!written.has(file)) {
    writeFileSync(file, source, { mode: 0o600 });
    written.add(file);
  }
  return file;
}
