#!/usr/bin/env node
// The caelum-scheduler command runs the compiled JavaScript in dist/ (npm run build; `npm ci` and
// `npm install` build it through the prepare script). A TypeScript fleet file is the one thing
// transpiled at run time, by src/import-config.ts, when a command loads it.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('caelum-scheduler: dist/ is missing; build it with `npm run build` (npm ci does it too)\n');
  process.exit(1);
}
await import(entry.href);
