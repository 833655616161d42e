import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Fails a file that leaves a worker, scheduler, server, connection or timer open.
    setupFiles: ['test/helpers/leak-check.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Files isolate themselves (own BullMQ prefix, own Postgres schema), so they run in parallel.
    fileParallelism: true,
  },
});
