import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The end-to-end tier (`npm run test:e2e`) and the soak tier (`npm run test:soak`) run on their own.
    exclude: ['test/e2e/**', 'test/soak/**', '**/node_modules/**'],
    globalSetup: ['test/support/global-setup.ts'],
    // DynamoDB Local is one JVM shared by every file (each file has its own tables); on a
    // 2-core machine two workers keep it and the tests responsive.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT' },
    // A test's console output is shown when it fails, not when it passes.
    silent: 'passed-only',
  },
});
