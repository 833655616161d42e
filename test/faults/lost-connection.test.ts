// Fault: Postgres goes away while a client is checked out between two statements (inside a
// transaction). pg emits the loss on the client, which the pool does not listen to while the
// client is out: unheard, it was an uncaught exception that ended the process (seen in CI when a
// periodic read coincided with a cut). Now the loss is logged, the next statement fails with the
// service named, and the process goes on.
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/registry/pool.js';
import { testLogger } from '../helpers/logger.js';
import { DATABASE_URL } from '../helpers/servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

let proxy: TcpProxy;
beforeAll(async () => {
  const target = new URL(DATABASE_URL);
  proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.start();
});
afterAll(async () => {
  await proxy.cut();
});

describe('a connection lost while checked out', () => {
  it('does not end the process: the next statement fails naming Postgres', async () => {
    const url = new URL(DATABASE_URL);
    url.host = `127.0.0.1:${proxy.port}`;
    const pool = createPool(url.toString(), testLogger, { max: 1 });
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const client = await pool.connect();
      await client.query('begin');
      await proxy.cut();
      // Watch the socket, not the client: a listener on the client would hear the loss itself.
      const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
      await waitFor('the connection to close', () => socket.destroyed);
      await new Promise((resolve) => setImmediate(resolve));
      await expect(client.query('select 1')).rejects.toThrow(/postgres/i);
      client.release(true);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await proxy.restore();
      await pool.end();
    }
  });
});
