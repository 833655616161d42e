// Takes the next job of a queue as a worker would, leaving it active under the caller's lock: a
// test can then fail or complete it by hand with BullMQ's own calls.
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { REDIS_URL } from './servers.js';

export async function takeJob(prefix: string, queue: string): Promise<{ job: Job; token: string; worker: { close(): Promise<void> } }> {
  // BullMQ does not close a connection it is handed; the worker's close() here does.
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const consumer = new Worker(queue, null, { connection, prefix, autorun: false });
  const token = 'test-token';
  const worker = {
    close: async () => {
      await consumer.close();
      connection.disconnect();
    },
  };
  const job = (await consumer.getNextJob(token, { block: false })) as Job | undefined;
  if (!job) {
    await worker.close();
    throw new Error(`no job in ${queue}`);
  }
  return { job, token, worker };
}
