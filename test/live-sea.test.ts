/**
 * The single executable live in a real guest without Node: ../shared/harness boots the Debian 6.1 kernel
 * with the demo module leaking, copies in only dist/sysak-linux-x64 (npm run package) and runs
 * test/harness/sea-payload.sh, which first deletes the node the harness puts into every guest. Several
 * minutes of QEMU: only with SYSAK_HARNESS=1 (and qemu, root, the harness), like test/live.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, writePayloadScript } from './helpers.js';

const HARNESS = join(ROOT, '..', 'shared', 'harness');
const why = process.env.SYSAK_HARNESS !== '1' ? 'set SYSAK_HARNESS=1 to run (builds the executable, boots QEMU, ~5 min)'
  : !existsSync(join(HARNESS, 'record.sh')) ? `no harness at ${HARNESS}`
  : spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0 ? 'qemu-system-x86_64 is not installed (see the harness README)'
  : process.getuid?.() !== 0 ? 'the harness needs root' : null;

/** The text between a "=== NAME" line and the next "===" line. */
function section(out: string, name: string): string {
  return out.split(`=== ${name}`)[1]?.split('\n===')[0] ?? '';
}

describe.skipIf(why !== null)(`single executable in a QEMU guest without node (${why ?? 'harness available'})`, () => {
  it('demo: live verdict demo_conn_add from the executable alone; tracefs as it was after a run, SIGINT and SIGTERM', () => {
    const work = mkdtempSync(join(tmpdir(), 'sysak-sea-payload-'));
    const stage = join(work, 'payload'); // exactly what the guest gets
    mkdirSync(stage);
    try {
      // SYSAK_SEA_EXE: an executable built before (the build then does not wait for the heavy lock).
      if (process.env.SYSAK_SEA_EXE) copyFileSync(process.env.SYSAK_SEA_EXE, join(stage, 'sysak-linux-x64'));
      else execFileSync(process.execPath, [join(ROOT, 'scripts', 'package.mjs'), '--out', join(stage, 'sysak-linux-x64'), '--quiet'], { cwd: ROOT, stdio: 'ignore' });
      writePayloadScript('sea-payload.sh', stage);
      const out = join(work, 'out');
      execFileSync(join(HARNESS, 'record.sh'), [join(HARNESS, 'scenarios', 'demo-kmalloc64'), out], {
        cwd: HARNESS,
        env: { ...process.env, HASH_POINTERS: '1', TRACE: '0', DURATION: '5', PAYLOAD_DIR: stage, PAYLOAD_CMD: 'sh run.sh' },
        stdio: 'ignore',
        timeout: 1_500_000,
      });
      const stdout = readFileSync(join(out, 'guest', 'payload.stdout'), 'utf8');
      if (process.env.SYSAK_SEA_PAYLOAD_OUT) copyFileSync(join(out, 'guest', 'payload.stdout'), process.env.SYSAK_SEA_PAYLOAD_OUT);
      expect(stdout).toMatch(/^=== node in PATH: none /m);
      expect(stdout).toMatch(/^=== files: run\.sh sysak-linux-x64 $/m);
      expect(stdout).toMatch(/^=== check rc=0 /m);
      expect(stdout).toMatch(/^=== version: sysak-memleak \S+ \(node v20\.[\d.]+, commit \S+, single executable\)$/m);
      expect(stdout).toMatch(/^=== run rc=0 /m);
      expect(stdout).toMatch(/^=== state equal after run: yes$/m);
      const run = section(stdout, 'state equal after run: yes');
      expect(run).toMatch(/^Verdict: slab leak in kmalloc-64 by demo_conn_add\+0x[0-9a-f]+\/0x[0-9a-f]+ \[memdemo\]$/m);
      expect(run).toMatch(/ 2 workers, /);
      expect(stdout).toMatch(/^=== sigINT rc=130$/m);
      expect(stdout).toMatch(/^=== state equal after sigINT: yes$/m);
      expect(stdout).toMatch(/^=== sigTERM rc=143$/m);
      expect(stdout).toMatch(/^=== state equal after sigTERM: yes$/m);
      expect(stdout).toMatch(/^=== worker dirs left: 0$/m);
      expect(stdout).toMatch(/^=== work dirs left: 0$/m);
      const tar = stdout.split('=== SAVE-TAR-BEGIN\n')[1]?.split('=== SAVE-TAR-END')[0] ?? '';
      expect(tar.length).toBeGreaterThan(0);
      if (process.env.SYSAK_SEA_SAVE_TO) {
        mkdirSync(process.env.SYSAK_SEA_SAVE_TO, { recursive: true });
        execFileSync('sh', ['-c', `base64 -d | tar xzf - -C ${process.env.SYSAK_SEA_SAVE_TO}`], { input: tar });
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 1_800_000);
});
