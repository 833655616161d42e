// The tests that run bin/caelum-scheduler.js run dist/, the compiled sources. Before a test run,
// dist/ is rebuilt when any file under src/ is newer than what the build made of it, or has no
// output at all, so that those tests never pass or fail on yesterday's code.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const OUTPUT_OF: [RegExp, string][] = [
  [/\.ts$/, '.js'],
  [/\.mts$/, '.mjs'],
  [/\.cts$/, '.cjs'],
];

/** The build's output for a file under src/ (a path relative to it). */
export function outputOf(rel: string): string {
  for (const [ext, js] of OUTPUT_OF) if (ext.test(rel)) return rel.replace(ext, js);
  return rel;
}

/** Files under src/ whose output in dist/ is missing or older than they are. */
export function staleSources(root: string): string[] {
  const src = path.join(root, 'src');
  const dist = path.join(root, 'dist');
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (!entry.name.endsWith('.d.ts')) {
        const out = path.join(dist, outputOf(path.relative(src, file)));
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(file).mtimeMs) stale.push(path.relative(root, file));
      }
    }
  };
  walk(src);
  return stale;
}

export function ensureFreshBuild(root: string): void {
  const stale = staleSources(root);
  if (stale.length === 0) return;
  const more = stale.length > 1 ? ` and ${stale.length - 1} more` : '';
  process.stderr.write(`building dist/ (${stale[0]}${more} changed since the last build)\n`);
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'inherit' });
}
