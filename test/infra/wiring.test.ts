import type { agentsStore } from '../../functions/adapters/dynamodb/agents-store.js';
import type { RecordsStore } from '../../functions/adapters/dynamodb/records-store.js';
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { buildDeps } from '../../functions/adapters/deps.js';
import { createDocumentClient } from '../../functions/adapters/dynamodb/client.js';
import { ConfigError } from '../../functions/agents/config.js';
import { testConfig } from '../support/api.js';
import { LocalMetrics } from '../../local/metrics.js';

/** Wiring: each function gets only the tables it is granted, and a bad configuration fails its cold start. */
it('refuses, in a sentence, to use a table the function was not granted', () => {
  const db = createDocumentClient('http://127.0.0.1:1');
  const d = buildDeps({ metrics: new LocalMetrics(),
    config: { ...testConfig(), recordsTable: undefined },
    db,
    workflow: { start: async () => {} },
    fleetWorkflow: { start: async () => {} },
    events: { publish: async () => {} },
    queue: { send: async () => {} },
  });
  expect((d.agents as ReturnType<typeof agentsStore>).tableName).toMatch(/^agents-/);
  expect(() => d.records.getMessage('a', 'm')).toThrow(ConfigError);
  expect(() => (d.records as RecordsStore).tableName).toThrow('RECORDS_TABLE is not set for this function: its route does not declare access to that table');
  db.destroy();
});

it('fails the cold start, with one log line, when the configuration is invalid', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', "await import('./functions/adapters/deps.ts')"], {
    env: { ...process.env, AWS_LAMBDA_FUNCTION_NAME: 'agents-test', LEASE_TTL_MS: 'soon', POWERTOOLS_LOG_LEVEL: 'INFO' },
    encoding: 'utf8',
  });
  expect(run.status, run.stderr).not.toBe(0);
  const line = `${run.stdout}\n${run.stderr}`.split('\n').find((l) => l.includes('configuration error: this function'));
  expect(line && JSON.parse(line)).toMatchObject({ level: 'ERROR', message: 'configuration error: this function cannot start' });
  expect(line).toContain('LEASE_TTL_MS must be an integer');
});
