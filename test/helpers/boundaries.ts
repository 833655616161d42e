// Reads the imports of every file under a source folder and reports those that break the
// boundary table of the architecture (docs/architecture.md, "Boundaries"). Pure text: the code
// is not loaded, so a file that fails to compile is still checked.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export type Part = 'config' | 'queues' | 'registry' | 'locks' | 'checkpoints' | 'scheduler' | 'workers' | 'policy' | 'api' | 'notifications';

/** The part a file belongs to; undefined for parts the table leaves free (commands, dev, pipelines, top-level modules). */
export function partOf(relFromSrc: string): Part | undefined {
  const p = relFromSrc.split(path.sep).join('/');
  if (p.startsWith('workers/policy/') || p === 'workers/policy.ts') return 'policy';
  const top = p.split('/')[0]!;
  const parts: Part[] = ['config', 'queues', 'registry', 'locks', 'checkpoints', 'scheduler', 'workers', 'api', 'notifications'];
  return p.includes('/') ? parts.find((x) => x === top) : undefined;
}

/** Parts each part may never import (the policy is part of workers, so it inherits workers' rules). */
const FORBIDDEN: Record<Part, Part[]> = {
  config: [], // config imports nothing of the project at all: see below
  queues: ['workers', 'policy', 'api', 'scheduler', 'registry'],
  registry: ['workers', 'policy', 'api', 'scheduler', 'checkpoints'],
  locks: ['workers', 'policy', 'api', 'scheduler'],
  checkpoints: ['api', 'workers', 'policy', 'scheduler'],
  scheduler: ['workers', 'policy', 'api'],
  workers: ['api', 'scheduler'],
  policy: ['api', 'scheduler'],
  api: ['workers', 'policy'],
  notifications: ['workers', 'policy', 'api', 'scheduler'],
};

/** Packages config may use: zod, croner so that a bad cron expression stops start naming its field, yaml for the tokens file. */
const CONFIG_PACKAGES = new Set(['zod', 'croner', 'yaml']);
/** I/O the dispatch policy must not touch: it is pure functions over a snapshot. */
const POLICY_IO_PACKAGES = /^(ioredis|bullmq|pg|execa|node:(fs|fs\/promises|child_process|net|http|https|timers|timers\/promises|dgram|worker_threads))$/;
const POLICY_IO_CALLS = /\b(setTimeout|setInterval|setImmediate|Date\.now|new Date\(\s*\)|performance\.now|process\.hrtime)\b/;

export interface Violation {
  file: string;
  line: number;
  text: string;
  rule: string;
}

interface ImportSite {
  line: number;
  text: string;
  specifier: string;
  typeOnly: boolean;
}

const IMPORT_RE = /^\s*(import|export)\s+(type\s+)?([^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/;

export function importsOf(source: string): ImportSite[] {
  const sites: ImportSite[] = [];
  // Multi-line imports: join each statement onto the line where it starts.
  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i]!;
    const start = i;
    if (/^\s*(import|export)\b[^'"]*\{[^}]*$/.test(text)) {
      while (i + 1 < lines.length && !/['"];?\s*$/.test(text)) text += ' ' + lines[++i]!.trim();
    }
    const m = IMPORT_RE.exec(text);
    if (!m) continue;
    const specifier = m[4] ?? m[5]!;
    const typeOnly = Boolean(m[2]) || /^\s*import\s*\{\s*(type\s+[^,}]+,?\s*)+\}/.test(text);
    sites.push({ line: start + 1, text: text.trim(), specifier, typeOnly });
  }
  return sites;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

export function checkBoundaries(srcDir: string): Violation[] {
  const violations: Violation[] = [];
  for (const file of filesUnder(srcDir)) {
    const rel = path.relative(srcDir, file);
    const from = partOf(rel);
    if (!from) continue;
    const source = readFileSync(file, 'utf8');
    const report = (site: { line: number; text: string }, rule: string) =>
      violations.push({ file: path.join(path.basename(srcDir), rel), line: site.line, text: site.text, rule });
    for (const site of importsOf(source)) {
      if (!site.specifier.startsWith('.')) {
        if (from === 'config' && !site.specifier.startsWith('node:') && !CONFIG_PACKAGES.has(site.specifier)) {
          report(site, `config imports only the standard library, zod and croner, not "${site.specifier}"`);
        }
        if (from === 'policy' && !site.typeOnly && POLICY_IO_PACKAGES.test(site.specifier)) {
          report(site, `the dispatch policy does no I/O, so it may not import "${site.specifier}"`);
        }
        continue;
      }
      const target = path.relative(srcDir, path.resolve(path.dirname(file), site.specifier));
      if (target.startsWith('..')) continue;
      const to = partOf(target);
      if (to === from) continue;
      if (from === 'config') {
        report(site, `config imports nothing of the project, but this imports ${target}`);
      } else if (from === 'policy' && !site.typeOnly && to !== 'policy') {
        // Values from elsewhere could carry I/O in; types cannot.
        report(site, `the dispatch policy may import only types from outside it, not the value import of ${target}`);
      } else if (to && FORBIDDEN[from].includes(to) && !(from === 'queues' && to === 'registry' && site.typeOnly)) {
        report(site, `${from} may not import ${to} (${target})`);
      }
    }
    if (from === 'policy') {
      source.split('\n').forEach((text, i) => {
        if (POLICY_IO_CALLS.test(text) && !/^\s*(\/\/|\*|\/\*)/.test(text)) {
          report({ line: i + 1, text: text.trim() }, 'the dispatch policy reads no clock and sets no timer: time comes in the snapshot');
        }
      });
    }
  }
  return violations;
}

/** Files outside the composition root that open a Redis or Postgres connection. */
export function connectionOpeners(srcDir: string, allowed: string[]): Violation[] {
  const opens = /\b(createRedis|createPool)\(|new (Redis|IORedis|pg\.Pool|Pool|pg\.Client|Client)\(/;
  const found: Violation[] = [];
  for (const file of filesUnder(srcDir)) {
    const rel = path.relative(srcDir, file).split(path.sep).join('/');
    if (allowed.includes(rel)) continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((text, i) => {
        if (opens.test(text) && !/^\s*(\/\/|\*|\/\*)/.test(text) && !/^\s*export (async )?function/.test(text)) {
          found.push({ file: `src/${rel}`, line: i + 1, text: text.trim(), rule: 'only the composition root opens connections' });
        }
      });
  }
  return found;
}

export const describeViolations = (vs: Violation[]) => vs.map((v) => `${v.file}:${v.line}: ${v.rule}\n    ${v.text}`).join('\n');
