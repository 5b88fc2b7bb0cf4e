/**
 * `npm run package`: the single executable is built here (about 10 s: esbuild, the SEA blob, postject)
 * and run from a directory holding nothing but itself, with a PATH that has no node, as on a production
 * host. Its report must be the one `npm start` prints (elapsed times aside), with scan workers running
 * from its embedded sources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sample } from './helpers.js';

const host = mkdtempSync(join(tmpdir(), 'sysak-sea-'));
const EXE = join(host, 'sysak-linux-x64');
const EMPTY_PATH = join(host, 'bin'); // an empty directory: no node, no npm, no shell tools

function exe(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(EXE, args, { cwd: host, encoding: 'utf8', env: { PATH: EMPTY_PATH, HOME: host, TMPDIR: join(host, 'tmp'), ...env } });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

/** Elapsed times are the only thing two runs of the same analysis may differ in. */
const timeless = (s: string) => s.replace(/\b\d+ ms\b/g, 'N ms');

describe.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('single executable (npm run package)', () => {
  beforeAll(() => {
    mkdirSync(EMPTY_PATH);
    mkdirSync(join(host, 'tmp'));
    symlinkSync(join(ROOT, 'samples'), join(host, 'samples'));
    const built = join(host, 'build', 'sysak-linux-x64');
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'package.mjs'), '--out', built, '--quiet'], { cwd: ROOT, stdio: 'pipe' });
    copyFileSync(built, EXE);
    rmSync(join(host, 'build'), { recursive: true });
    execFileSync('chmod', ['755', EXE]);
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: EMPTY_PATH } }).status).not.toBe(0);
  }, 180_000);
  afterAll(() => rmSync(host, { recursive: true, force: true }));

  it('--from samples/demo-kmalloc64 without node gives the report `npm start` gives', () => {
    const start = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string;
    const [cmd, script, ...args] = start.split(' ');
    expect(cmd).toBe('node');
    const viaNode = spawnSync(process.execPath, [script, ...args], { cwd: ROOT, encoding: 'utf8' });
    expect(viaNode.status).toBe(0);
    // Same relative paths as `npm start` (they appear in the report): samples/ is linked beside the executable.
    const r = exe(args);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Verdict: slab leak in kmalloc-64 by demo_conn_add\+0x24\/0x140 \[memdemo\]$/m);
    expect(timeless(r.out)).toBe(timeless(viaNode.stdout));
  });

  it('--workers 2 scans on worker threads loaded from a private directory that is gone afterwards', () => {
    const r = exe(['memleak', '--from', sample('demo-kmalloc64'), '--workers', '2', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.scan.workers).toBe(2);
    expect(j.verdict.function).toBe('demo_conn_add+0x24/0x140 [memdemo]');
    expect(readdirSync(join(host, 'tmp'))).toEqual([]);
    // The pool really loads its code from TMPDIR: where that cannot be written, workers cannot start
    // (one clear line) while --workers 0 still scans in the main thread.
    const noTmp = { TMPDIR: join(host, 'no-such-dir') };
    const bad = exe(['memleak', '--from', sample('demo-kmalloc64'), '--workers', '2'], noTmp);
    expect(bad.code).toBe(3);
    expect(bad.out).toBe('');
    expect(bad.err).toMatch(/^sysak memleak: cannot create a directory for the scan workers in .*no-such-dir \(set TMPDIR/);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(exe(['memleak', '--from', sample('demo-kmalloc64'), '--workers', '0'], noTmp).code).toBe(0);
  });

  it('SIGINT during the scan removes the worker directory and ends as a signal would', async () => {
    const tmp = join(host, 'tmp');
    const child = spawn(EXE, ['memleak', '--from', sample('demo-kmalloc64'), '--workers', '2'], { cwd: host, env: { PATH: EMPTY_PATH, TMPDIR: tmp }, stdio: 'ignore' });
    const ended = new Promise<{ code: number | null; signal: string | null }>((ok) => child.on('exit', (code, signal) => ok({ code, signal })));
    // The directory appears when the pool starts: interrupt then, in the middle of the scan.
    let sawDir = false;
    for (let i = 0; i < 2000 && !sawDir; i++) {
      sawDir = readdirSync(tmp).length > 0;
      if (!sawDir) await new Promise((r) => setTimeout(r, 2));
    }
    expect(sawDir).toBe(true);
    child.kill('SIGINT');
    const { code, signal } = await ended;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGINT' });
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('--version names the package version, the Node inside and the commit built from', () => {
    const r = exe(['--version']);
    expect(r.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    let commit = 'unknown';
    try {
      commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      // not a git checkout: the executable says unknown
    }
    expect(r.out).toBe(`sysak-memleak ${pkg.version} (node ${process.version}, commit ${r.out.includes('-dirty') ? `${commit}-dirty` : commit}, single executable)\n`);
  });

  it('bad input still gets one line and an exit code, no stack trace', () => {
    const r = exe(['memleak', '--rd', join(host, 'nope.txt'), '--object-size', '64']);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/nope\.txt: cannot read: no such file/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
