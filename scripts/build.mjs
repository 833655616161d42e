// npm run build: compiles src/ to dist/ (ESM, declarations, source maps) with tsc, then copies
// every other file under src/ (the migrations' SQL, any static assets) to the same place in
// dist/, since code reads them relative to its own module. The new tree is built beside dist/
// and swapped in at the end, so a failed build leaves the last good dist/ as it was.
//
// With --if-stale it builds only when a file under src/ is newer than its output in dist/, or has
// none: what `npm run dev`/`demo`, the test run and the benchmarks do first, so that nothing runs
// yesterday's code.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

const TYPESCRIPT = /\.([cm]?)ts$/;
/** Where the build puts a file of src/ (a path relative to it). */
const outputOf = (rel) => rel.replace(TYPESCRIPT, '.$1js');

/** Every file under a folder, as paths relative to it. */
function filesUnder(dir, rel = '') {
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((entry) => {
    const child = path.join(rel, entry.name);
    return entry.isDirectory() ? filesUnder(dir, child) : [child];
  });
}

/** Files under src/ whose output in dist/ is missing or older than they are. */
function staleSources() {
  if (!existsSync(src)) return []; // an installed package: dist/ is all there is
  return filesUnder(src)
    .filter((rel) => !rel.endsWith('.d.ts'))
    .filter((rel) => {
      const out = path.join(dist, outputOf(rel));
      return !existsSync(out) || statSync(out).mtimeMs < statSync(path.join(src, rel)).mtimeMs;
    });
}

function build() {
  const next = path.join(root, `dist.building-${process.pid}`);
  const old = path.join(root, `dist.old-${process.pid}`);
  try {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit' });
    for (const rel of filesUnder(src).filter((f) => !TYPESCRIPT.test(f))) cpSync(path.join(src, rel), path.join(next, rel));
    if (existsSync(dist)) renameSync(dist, old);
    renameSync(next, dist);
  } catch (err) {
    process.exitCode = 1;
    if (err.status === undefined) console.error(err); // tsc's own errors are printed already
  } finally {
    rmSync(next, { recursive: true, force: true });
    rmSync(old, { recursive: true, force: true });
  }
}

if (process.argv.includes('--if-stale')) {
  const stale = staleSources();
  if (stale.length > 0) {
    console.error(`building dist/: src/${stale[0]}${stale.length > 1 ? ` and ${stale.length - 1} more` : ''} changed since the last build`);
    build();
  }
} else {
  build();
}
