// npm run build: compiles src/ to dist/ (ESM, declarations, source maps) with tsc, then copies
// every other file under src/ (the migrations' SQL, any static assets) to the same place in
// dist/, since code reads them relative to its own module. The new tree is built beside dist/
// and swapped in at the end, so a failed build leaves the last good dist/ as it was.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const next = path.join(root, `dist.building-${process.pid}`);
const old = path.join(root, `dist.old-${process.pid}`);

/** Files tsc does not emit: everything under src/ but TypeScript sources. */
const isAsset = (name) => !/\.[cm]?tsx?$/.test(name);

function copyAssets(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) copyAssets(source, path.join(to, entry.name));
    else if (isAsset(entry.name)) cpSync(source, path.join(to, entry.name));
  }
}

try {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit' });
  copyAssets(src, next);
  if (existsSync(dist)) renameSync(dist, old);
  renameSync(next, dist);
} catch (err) {
  process.exitCode = 1;
  if (err.status === undefined) console.error(err);
} finally {
  rmSync(next, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
}
