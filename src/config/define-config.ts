import type { FleetInput } from './fleet-schema.js';

/**
 * Typed identity for workers.config.ts: the editor checks the shape while it is written, and the
 * loader validates it again with zod when the process starts.
 */
export function defineConfig(config: FleetInput): FleetInput {
  return config;
}

export type { FleetInput } from './fleet-schema.js';
