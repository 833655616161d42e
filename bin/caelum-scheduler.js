#!/usr/bin/env node
// The package runs its TypeScript sources through tsx, so that workers.config.ts (the fleet as
// code) loads the same way as the service itself, with no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
