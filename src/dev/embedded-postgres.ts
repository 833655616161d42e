// For `demo` and `dev`: use DATABASE_URL when set; else the local PostgreSQL when one answers
// (database "caelum", created when missing); else an embedded PGlite database served over the
// Postgres wire protocol, so the same `pg` code runs against it. PGlite is a single session:
// the app's pool must then hold one connection, and NOTIFY never crosses connections. The folder
// is locked (`pglite.lock` beside it holds the demo's pid) so a second demo cannot open it too.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { DEFAULT_DATABASE_URL } from '../config/env.js';
import type { Logger } from '../logger.js';
import type { ProvidedService } from './embedded-redis.js';
import { answers, freePort } from '../net.js';
import { acquirePidLock } from './pid-lock.js';

export interface ProvidedDatabase extends ProvidedService {
  /** Largest pool the database can serve: 1 for PGlite. */
  maxConnections: number;
}

/** Creates the URL's database on its server when it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`create database ${client.escapeIdentifier(name)}`);
      } catch (err) {
        // Another process created it at the same moment.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

export async function provideDatabase(
  configured: string | undefined,
  dataDir: string,
  logger: Logger,
  localUrl: string = DEFAULT_DATABASE_URL,
): Promise<ProvidedDatabase> {
  const none = async () => {};
  if (configured) return { url: configured, embedded: false, maxConnections: 10, close: none };
  const local = new URL(localUrl);
  if (await answers(local.hostname, Number(local.port || 5432))) {
    await ensureDatabase(localUrl);
    return { url: localUrl, embedded: false, maxConnections: 10, close: none };
  }

  const { PGlite } = await import('@electric-sql/pglite');
  type PGliteInstance = Awaited<ReturnType<typeof PGlite.create>>;
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const folder = path.resolve(dataDir, 'pglite');
  mkdirSync(folder, { recursive: true });
  // PGlite has no lock of its own: two demos opening one folder would corrupt it.
  const unlock = await acquirePidLock(
    `${folder}.lock`,
    (pid) => `the embedded database in ${folder} is in use by another demo (pid ${pid}); stop that one, or set CAELUM_DATA_DIR to another folder`,
  );
  let db: PGliteInstance | undefined;
  try {
    db = await PGlite.create(folder);
    const port = await freePort();
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 8 });
    await server.start();
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    logger.info({ url, folder }, `no PostgreSQL answers on ${local.host}: serving an embedded PGlite database`);
    const opened = db;
    return {
      url,
      embedded: true,
      folder,
      maxConnections: 1,
      close: async () => {
        try {
          await server.stop();
          await opened.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (err) {
    await db?.close().catch(() => {});
    unlock();
    throw err;
  }
}
