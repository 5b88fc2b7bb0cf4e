/**
 * Live mode end to end, in a real guest: ../shared/harness boots the Debian 6.1 kernel under QEMU
 * WITHOUT no_hash_pointers (HASH_POINTERS=1: text traces hash %p), loads the scenario module, and runs
 * test/harness/live-payload.sh inside it with this checkout's dist/ and production node_modules. It
 * takes ~3 minutes per scenario, so it runs only with SYSAK_HARNESS=1 (and qemu, root, the harness).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultRequest, requestFromRecording } from '../src/request.js';
import { analyze } from '../src/slab/analyze.js';
import { ROOT } from './helpers.js';

const HARNESS = join(ROOT, '..', 'shared', 'harness');
const why = process.env.SYSAK_HARNESS !== '1' ? 'set SYSAK_HARNESS=1 to run (boots QEMU, ~3 min per scenario)'
  : !existsSync(join(HARNESS, 'record.sh')) ? `no harness at ${HARNESS}`
  : spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0 ? 'qemu-system-x86_64 is not installed (see the harness README)'
  : process.getuid?.() !== 0 ? 'the harness needs root' : null;

function runPayload(scenario: string, payload = 'live-payload.sh'): { out: string; dir: string } {
  const stage = mkdtempSync(join(tmpdir(), 'sysak-payload-'));
  mkdirSync(join(stage, 'app'));
  for (const f of ['dist', 'package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(stage, 'app', f), { recursive: true });
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: join(stage, 'app'), stdio: 'ignore' });
  cpSync(join(ROOT, 'test', 'harness', payload), join(stage, 'run.sh'));
  const out = join(stage, 'out');
  const scenDir = existsSync(join(HARNESS, 'scenarios', scenario)) ? join(HARNESS, 'scenarios', scenario) : join(ROOT, 'test', 'scenarios', scenario);
  execFileSync(join(HARNESS, 'record.sh'), [scenDir, out], {
    cwd: HARNESS,
    env: { ...process.env, HASH_POINTERS: '1', TRACE: '0', DURATION: '5', PAYLOAD_DIR: stage, PAYLOAD_CMD: 'sh run.sh' },
    stdio: 'ignore',
    timeout: 900_000,
  });
  const stdout = readFileSync(join(out, 'guest', 'payload.stdout'), 'utf8');
  const tar = stdout.split('=== SAVE-TAR-BEGIN\n')[1]?.split('=== SAVE-TAR-END')[0] ?? '';
  const saved = join(stage, 'saved');
  mkdirSync(saved);
  if (tar) execFileSync('sh', ['-c', `base64 -d | tar xzf - -C ${saved}`], { input: tar });
  return { out: stdout, dir: join(saved, 'save') };
}

describe.skipIf(why !== null)(`live mode in a QEMU guest (${why ?? 'harness available'})`, () => {
  it('demo: hashed text pointers, yet demo_conn_add in kmalloc-64; tracefs untouched; SIGINT cleans up; --save replays', async () => {
    const { out, dir } = runPayload('demo-kmalloc64');
    expect(out).not.toMatch(/no_hash_pointers/);
    expect(out).toMatch(/=== run rc=0/);
    expect(out).toMatch(/state equal after run: yes/);
    expect(out).toMatch(/=== sigint rc=130/);
    expect(out).toMatch(/state equal after sigint: yes/);
    const live = JSON.parse(out.split('=== state equal after run: yes\n')[1].split('\n')[0]);
    expect(live.verdict.function).toMatch(/^demo_conn_add\+/);
    expect(live.verdict.cache).toBe('kmalloc-64');
    const replay = await analyze(requestFromRecording(dir, defaultRequest()));
    expect(replay.verdict?.function).toBe(live.verdict.function);
    expect(replay.verdict?.marked).toBe(live.verdict.marked);
    rmSync(dir, { recursive: true, force: true });
  }, 1_800_000);

  it('vmalloc scenario: --type auto finds the vmalloc leak from steady growth and names vmleak_buf_add', () => {
    const { out } = runPayload('vmleak-vmalloc', 'live-kinds-payload.sh');
    expect(out).toMatch(/=== auto rc=0/);
    expect(out).toMatch(/=== state equal: yes/);
    const auto = JSON.parse(out.split('=== auto rc=0')[1].split('\n').find((l) => l.startsWith('{'))!);
    expect(auto.type).toBe('vmalloc');
    expect(auto.verdict.function).toMatch(/^vmleak_buf_add\+/);
  }, 1_800_000);

  it('page scenario: -t page names vmleak_page_add from kernel stacks decoded from the ring buffer', () => {
    const { out } = runPayload('vmleak-page', 'live-kinds-payload.sh');
    expect(out).toMatch(/=== page rc=0/);
    const page = JSON.parse(out.split('=== page rc=0')[1].split('\n').find((l) => l.startsWith('{'))!);
    expect(page.verdict.function).toMatch(/^vmleak_page_add\+/);
    expect(page.verdict.similar).toBe(page.verdict.blocks);
  }, 1_800_000);

  it('sanity (nothing leaks): no verdict', () => {
    const { out } = runPayload('sanity-none');
    expect(out).toMatch(/=== run rc=0/);
    const live = JSON.parse(out.split('=== state equal after run: yes\n')[1].split('\n')[0]);
    expect(live.verdict).toBeNull();
  }, 1_800_000);
});
