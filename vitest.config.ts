import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The tests run the sources: the fleet files' self-reference too (tsconfig.json's paths).
    alias: { 'caelum-scheduler/config': fileURLToPath(new URL('./src/config/define-config.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Reachable servers first, then a dist/ as fresh as src/ for the tests that run the built CLI.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Fails a file that leaves a worker, scheduler, server, connection or timer open.
    setupFiles: ['test/helpers/leak-check.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Files isolate themselves (own BullMQ prefix, own Postgres schema), so they run in parallel.
    fileParallelism: true,
  },
});
