/** `sysak --version`: the package version, the Node.js that runs it, and the commit it was built from. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD } from './build-info.js';

/** The checkout this module runs from: dist/src/ship/version.js (tsc) or src/ship/version.ts (vitest). */
function checkoutRoot(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../..', '../../..']) {
    const root = join(here, rel);
    if (existsSync(join(root, 'package.json'))) return root;
  }
  return null;
}

function fromCheckout(): { version: string; commit: string } {
  const root = checkoutRoot();
  let version = 'unknown';
  let commit = 'unknown';
  if (!root) return { version, commit };
  try {
    version = String(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version ?? 'unknown');
  } catch {
    // an unreadable package.json leaves 'unknown'
  }
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    commit = git('rev-parse', '--short=12', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no') ? '-dirty' : '');
  } catch {
    // no git, or not a git checkout (an npm install): the commit is not known
  }
  return { version, commit };
}

export function versionText(): string {
  const { version, commit } = BUILD ?? fromCheckout();
  const how = BUILD ? 'single executable' : 'from a checkout';
  return `sysak-memleak ${version} (node ${process.version}, commit ${commit}, ${how})\n`;
}
