// One pino root for the whole process (Fastify logs through it too); components take children
// with their own bindings. Pretty output only when a person is watching a terminal, an entry
// a line there too (fields after the message), so that logs do not scroll a banner away.
//
// No secret reaches the log: ioredis puts the arguments of a failed command on its error
// (`err.command.args`), and those of AUTH and HELLO are the user and the password, so every
// logged error keeps the command's name only.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** Drops `command.args` anywhere in a serialized error (its causes and aggregated errors too). */
function withoutCommandArgs(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => withoutCommandArgs(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'command' && v !== null && typeof v === 'object' && 'args' in v) {
      out[key] = { name: (v as { name?: unknown }).name };
    } else out[key] = withoutCommandArgs(v, depth + 1);
  }
  return out;
}

export const errSerializer = (err: Error) => withoutCommandArgs(pino.stdSerializers.err(err));

export function createLogger(level: string, opts: { pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  return pino({
    level,
    base: { pid: process.pid },
    serializers: { err: errSerializer },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid', singleLine: true } } } : {}),
  });
}
