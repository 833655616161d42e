// One pino root for the whole process (Fastify logs through it too); components take children
// with their own bindings. Pretty output only when a person is watching a terminal, an entry
// a line there too (fields after the message), so that logs do not scroll a banner away.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export function createLogger(level: string, opts: { pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  return pino({
    level,
    base: { pid: process.pid },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid', singleLine: true } } } : {}),
  });
}
