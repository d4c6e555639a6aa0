import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The soak tier (`npm run test:soak`): the long mixes whose value is in their length (the random
 * invariant mixes, work of 45 s kept alive by heartbeats). `.ci/run` runs it after `npm test`.
 */
// Not mergeConfig: it would add these files to the base's, not replace them.
export default defineConfig({ ...base, test: { ...base.test, include: ['test/soak/**/*.test.ts'], exclude: [] } });
