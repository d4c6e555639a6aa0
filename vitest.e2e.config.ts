import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The end-to-end tier (`npm run test:e2e`): the product as its users run it, whole processes each
 * test starts and kills. The deployed bundles as built by `cdk synth`, `npm start` and the demo as
 * a person types them, the README's command blocks as pasted, the console and the docs page in a
 * browser, and kill -9 of the server or of DynamoDB Local mid-work. `.ci/run` runs it after
 * `npm test`.
 */
// Not mergeConfig: it would add these files to the base's, not replace them.
export default defineConfig({ ...base, test: { ...base.test, include: ['test/e2e/**/*.test.ts'], exclude: [] } });
