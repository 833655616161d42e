// A PostgreSQL server of the test's own: initdb into a folder of its own, started on a free port
// with the settings and pg_hba lines the test gives (TLS, say), as a child of the test that dies
// with it (pdeathsig), stopped by its pid and its folder removed. Never the shared cluster.
// Postgres refuses to run as root, so as root it runs as the `postgres` user, in a folder
// (directly under the system's temporary folder, so that user can reach it) handed to that user.
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, execaSync, type ResultPromise } from 'execa';
import pg from 'pg';
import { freePort } from '../../src/net.js';
import { waitFor } from './wait.js';

/** The binaries of the newest PostgreSQL installed the Debian way, or undefined. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return version ? path.join(root, version, 'bin') : undefined;
}

const asRoot = process.getuid?.() === 0;

/** setpriv: as the postgres user when we are root, and killed with this process. */
function runAs(argv: string[]): string[] {
  const user = asRoot ? ['--reuid', 'postgres', '--regid', 'postgres', '--init-groups'] : [];
  return ['setpriv', ...user, '--pdeathsig', 'KILL', '--', ...argv];
}

export class PrivatePostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ResultPromise,
    private readonly output: () => string,
  ) {}

  /**
   * `files` are copied into the data folder (certificates, keys: Postgres wants its key owned by
   * its user, mode 0600) and named in `settings` by their base names.
   */
  static async start(opts: { settings: Record<string, string>; hba: string[]; files?: string[] }): Promise<PrivatePostgres> {
    const bin = postgresBin();
    if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-private-pg-'));
    const data = path.join(dir, 'data');
    mkdirSync(data, { recursive: true, mode: 0o700 });
    if (asRoot) chownSync(dir, uid('postgres'), gid('postgres'));
    if (asRoot) chownSync(data, uid('postgres'), gid('postgres'));
    const [program, ...args] = runAs([path.join(bin, 'initdb'), '-D', data, '--auth=trust', '-U', 'postgres', '--no-sync']);
    const init = await execa(program!, args, { reject: false });
    if (init.exitCode !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed: ${init.stderr}`);
    }
    for (const file of opts.files ?? []) {
      const target = path.join(data, path.basename(file));
      copyFileSync(file, target);
      await execa('chmod', ['600', target]);
      if (asRoot) chownSync(target, uid('postgres'), gid('postgres'));
    }
    writeFileSync(path.join(data, 'pg_hba.conf'), ['local all all trust', ...opts.hba, ''].join('\n'));
    const port = await freePort();
    const settings = { listen_addresses: '127.0.0.1', port: String(port), unix_socket_directories: data, fsync: 'off', ...opts.settings };
    const [p2, ...a2] = runAs([path.join(bin, 'postgres'), '-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])]);
    const child = execa(p2!, a2, { reject: false, all: true });
    let out = '';
    child.all!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const server = new PrivatePostgres(port, dir, child, () => out);
    await waitFor(
      `the private PostgreSQL on port ${port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`postgres exited: ${out}`);
        const c = new pg.Client({ host: data, port, user: 'postgres', database: 'postgres' });
        try {
          await c.connect();
          return true;
        } finally {
          await c.end().catch(() => {});
        }
      },
      { timeoutMs: 30_000 },
    ).catch(async (err: unknown) => {
      await server.stop();
      throw err;
    });
    return server;
  }

  /** What the server wrote (its log), for a failing test's message. */
  log(): string {
    return this.output();
  }

  /** Fast shutdown (SIGINT) of the postmaster this test started, by its pid; then its folder goes. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
    await this.child;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// `id` is the one portable way to look a user up without a native module.
const idOf = (flag: '-u' | '-g', name: string) => Number(execaSync('id', [flag, name]).stdout.trim());
const uid = (name: string) => idOf('-u', name);
const gid = (name: string) => idOf('-g', name);
