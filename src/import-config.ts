// Imports the fleet file. JavaScript (.js, .mjs) is imported as it is. TypeScript (.ts, .mts, .cts) is
// bundled by esbuild first, the way Vite loads vite.config.ts: the service itself runs compiled
// JavaScript, and this is the one place a transpiler is loaded, only when such a file is given.
//
// The bundle is imported from a data: URL rather than a file beside the config, because that
// folder may be read-only to the service (it is in the Docker image). A data: URL can import only
// built-in modules and absolute URLs, so every package the file imports (caelum-scheduler/config
// above all) is resolved here, from the file's folder, and left out of the bundle as the absolute
// URL of the file Node would have loaded. The file's own relative imports are bundled, and so is
// a bare import that resolves to TypeScript (a tsconfig.json `paths` entry: Node could not load it).
import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';

const TYPESCRIPT = /\.[cm]?ts$/;

/** The module namespace of `file` (an absolute path). */
export async function importConfig(file: string): Promise<unknown> {
  if (!TYPESCRIPT.test(file)) return import(pathToFileURL(file).href);
  const code = await bundle(file);
  return import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
}

async function bundle(file: string): Promise<string> {
  const esbuild = await import('esbuild');
  try {
    const result = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: `node${process.versions.node}`,
      sourcemap: 'inline',
      logLevel: 'silent',
      define: { 'import.meta.url': META.url, 'import.meta.filename': META.filename, 'import.meta.dirname': META.dirname },
      plugins: [packagesByUrl, ownFileMeta],
    });
    return result.outputFiles[0]!.text;
  } catch (err) {
    // esbuild's message lists every error with file and line; that is the one to show.
    throw new Error(err instanceof Error ? err.message : String(err), { cause: err });
  } finally {
    // The esbuild service is a child process; this process needs it no more.
    await esbuild.stop();
  }
}

const packagesByUrl: Plugin = {
  name: 'packages-by-url',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (isBuiltin(args.path)) return { path: args.path, external: true };
      if (args.pluginData === packagesByUrl) return undefined; // the resolve below, asking esbuild
      const found = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: packagesByUrl });
      if (found.errors.length > 0) return { errors: found.errors };
      if (TYPESCRIPT.test(found.path)) return { path: found.path };
      return { path: pathToFileURL(found.path).href, external: true };
    });
  },
};

/** What import.meta.url, .filename and .dirname become in a bundled file: the values of that file. */
const META = { url: '__caelum_meta_url', filename: '__caelum_meta_filename', dirname: '__caelum_meta_dirname' };

const ownFileMeta: Plugin = {
  name: 'own-file-meta',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
      const contents = await readFile(args.path, 'utf8');
      const values = { url: pathToFileURL(args.path).href, filename: args.path, dirname: path.dirname(args.path) };
      // One line, put before the first: the file's own lines keep their numbers.
      const prelude = `const ${META.url} = ${JSON.stringify(values.url)}, ${META.filename} = ${JSON.stringify(values.filename)}, ${META.dirname} = ${JSON.stringify(values.dirname)};`;
      return { contents: prelude + contents, loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
    });
  },
};
