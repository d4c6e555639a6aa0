import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { buildConsole } from '../../console/build.js';
import { startDynamoDbLocal } from '../../local/dynamodb.js';

/**
 * One Amazon DynamoDB Local (in memory, free port) for the whole run; each test file makes its own
 * tables. The client package is compiled first, as installed (agentctl and the examples run it),
 * and the console built.
 */
export default async function setup(project: TestProject) {
  execFileSync(new URL('../../node_modules/.bin/tsc', import.meta.url).pathname, ['-p', 'clients/typescript/tsconfig.json'], { cwd: new URL('../..', import.meta.url).pathname });
  // The console as its sources are now (the console function serves what this writes).
  await buildConsole();
  const dynamo = await startDynamoDbLocal();
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return () => dynamo.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}
