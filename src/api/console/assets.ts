// The console's files, read once when the API starts: its own (every file of public/, next to
// this module, so a compiled copy finds them the same way) and the UI library's modules, taken from
// the installed packages, so nothing comes from a CDN and nothing needs bundling. Each is served
// from memory under a fixed name; a request can only name one of these, never a path.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The folder of the console's own files (HTML, JS modules, CSS). */
export const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

/** Browser name -> module specifier of the package file; index.html's import map names these. */
const VENDOR: Record<string, string> = {
  'preact.mjs': 'preact',
  'hooks.mjs': 'preact/hooks',
  'htm.mjs': 'htm',
};

function asset(body: Buffer, name: string): Asset {
  const type = TYPES[path.extname(name)];
  if (!type) throw new Error(`console: no content type for ${name}`);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

export interface ConsoleAssets {
  files: Map<string, Asset>;
  vendor: Map<string, Asset>;
}

export function loadConsoleAssets(resolve: (specifier: string) => string = (s) => import.meta.resolve(s)): ConsoleAssets {
  const files = new Map<string, Asset>();
  for (const entry of readdirSync(PUBLIC_DIR, { withFileTypes: true })) {
    if (entry.isFile()) files.set(entry.name, asset(readFileSync(path.join(PUBLIC_DIR, entry.name)), entry.name));
  }
  if (!files.has('index.html')) throw new Error(`console: ${PUBLIC_DIR} has no index.html`);
  const vendor = new Map<string, Asset>();
  for (const [name, specifier] of Object.entries(VENDOR)) {
    vendor.set(name, asset(readFileSync(fileURLToPath(resolve(specifier))), name));
  }
  return { files, vendor };
}
