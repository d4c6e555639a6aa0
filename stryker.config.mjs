/**
 * Mutation testing (`npm run test:mutation`, not in CI): StrykerJS changes the domain and the
 * DynamoDB stores one mutant at a time and runs the vitest tests that cover each one; a mutant no
 * test notices (it survives) is a guard no test holds. Incremental: a run re-tests only what
 * changed since the last (reports/stryker-incremental.json). A narrower run:
 *   npm run test:mutation -- --mutate functions/agents/stop-commit.ts:15-20
 * The score and the surviving mutants in guards are in docs/BENCHMARKS.md.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: ['functions/agents/**/*.ts', 'functions/adapters/dynamodb/**/*.ts'],
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  // The tests share one DynamoDB Local per run and two vitest workers: one Stryker worker at a time on 2 cores.
  concurrency: 1,
  timeoutMS: 60_000,
  // The first run (every included test, to learn which test covers which mutant) takes minutes here.
  dryRunTimeoutMinutes: 40,
  ignoreStatic: true,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
};
