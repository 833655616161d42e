// Teardown in reverse order of start: every step runs even when one throws, and all errors are
// reported together. Shutdown signals: the first closes gracefully, a second exits at once.
import type { Logger } from './logger.js';
import { toError } from './errors.js';

export class Closers {
  private readonly steps: { name: string; close: () => Promise<void> | void }[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly logger?: Logger) {}

  add(name: string, close: () => Promise<void> | void): void {
    this.steps.push({ name, close });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const errors: Error[] = [];
      for (const step of [...this.steps].reverse()) {
        const started = performance.now();
        try {
          await step.close();
          this.logger?.debug({ step: step.name, ms: Math.round(performance.now() - started) }, 'closed');
        } catch (err) {
          errors.push(new Error(`closing ${step.name} failed: ${toError(err).message}`, { cause: err }));
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
    })();
    return this.closing;
  }
}

export function closeOnSignals(close: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => {
        logger.debug('closed; exiting');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
