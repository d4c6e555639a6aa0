import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The soak tier (`npm run test:soak`): the long mixes whose value is in their length (the random
 * invariant mixes, work of 45 s kept alive by heartbeats). `.ci/run` runs it after `npm test`.
 */
export default mergeConfig(base, defineConfig({ test: { include: ['test/soak/**/*.test.ts'], exclude: [] } }));
