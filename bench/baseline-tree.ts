// The "before" of the figures of compiled JavaScript (cli-latency.ts, worker-rss.ts): the tree
// of the last commit whose processes ran their TypeScript sources through tsx, extracted from
// git into a temporary folder, with this checkout's node_modules (tsx is a development dependency).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './lib.js';

/** Before compiled JavaScript: bin/caelum-scheduler.js registered tsx and imported src/cli.ts. */
export const BASELINE_REF = process.env.BENCH_BASELINE_REF || 'a1aa7ba';

export interface Tree {
  root: string;
  bin: string;
  close(): void;
}

export function baselineTree(): Tree {
  const root = mkdtempSync(path.join(os.tmpdir(), 'caelum-baseline-'));
  try {
    const tar = execFileSync('git', ['archive', '--format=tar', BASELINE_REF], { cwd: REPO_ROOT, maxBuffer: 256 * 2 ** 20 });
    execFileSync('tar', ['-x', '-C', root], { input: tar });
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`cannot extract the baseline ${BASELINE_REF} (set BENCH_BASELINE_REF): ${String(err)}`, { cause: err });
  }
  return { root, bin: path.join(root, 'bin/caelum-scheduler.js'), close: () => rmSync(root, { recursive: true, force: true }) };
}

/** This checkout, built: its bin runs dist/ (npm run build first). */
export const builtTree: Tree = { root: REPO_ROOT, bin: path.join(REPO_ROOT, 'bin/caelum-scheduler.js'), close: () => {} };

/**
 * A project folder of its own ("type": "module", as the README asks) with `tree` installed as
 * caelum-scheduler (a link), so that a fleet file there imports caelum-scheduler/config as a user's would.
 */
export function projectWith(tree: Tree): { dir: string; close(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-bench-project-'));
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(tree.root, path.join(dir, 'node_modules', 'caelum-scheduler'));
  return { dir, close: () => rmSync(dir, { recursive: true, force: true }) };
}
