// The tests that run bin/caelum-scheduler.js run dist/, the compiled sources: before they run,
// dist/ is rebuilt when a file under src/ is newer than its output (scripts/build.mjs --if-stale),
// so that they never pass or fail on yesterday's code.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export function ensureFreshBuild(root: string): void {
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs'), '--if-stale'], { cwd: root, stdio: 'inherit' });
}
