import { createLogger } from '../../src/logger.js';

/** Tests log only what goes wrong; LOG_LEVEL=debug npm test shows everything. */
export const testLogger = createLogger(process.env.LOG_LEVEL || 'error', { pretty: false });
