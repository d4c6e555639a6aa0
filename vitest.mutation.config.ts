import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The tests mutation testing runs (`npm run test:mutation`): the ones that hold the domain's and
 * the stores' guards (races, drains, the workflow, lost answers, clocks, the reaper, the worker).
 * The whole-artefact tests (bundles, npm start, browsers) add minutes per mutant and guard
 * nothing more in these files.
 */
// Not mergeConfig: it would add these files to the base's, not replace them.
export default defineConfig({ ...base, test: { ...base.test, include: ['test/{concurrency,drain,workflow,scheduled,worker}/**/*.test.ts', 'test/faults/{lost-responses,clocks}.test.ts'] } });
