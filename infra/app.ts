import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AgentsStack, type AgentsStackProps } from './stack.js';

/**
 * The context of cdk.json (settings and CDK's recommended feature flags), for apps built outside
 * the CDK CLI (the template and bundle tests), so they synthesize what `cdk synth` does.
 */
export function cdkJsonContext(): Record<string, unknown> {
  const file = new URL('../cdk.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { context: Record<string, unknown> }).context;
}

/** Stack props from context (cdk.json, or `-c key=value` on the command line). */
export function propsFromContext(app: App): AgentsStackProps {
  const ctx = (key: string) => app.node.tryGetContext(key) as unknown;
  const days = Number(ctx('logRetentionDays') ?? 30);
  const retention = Object.values(RetentionDays).find((v) => v === days);
  if (retention === undefined) throw new Error(`logRetentionDays ${days} is not a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, ...)`);
  return {
    stage: String(ctx('stage') ?? 'dev'),
    logRetentionDays: retention as RetentionDays,
    retainData: String(ctx('retainData') ?? 'true') !== 'false',
    stopWaitWindowMs: Number(ctx('stopWaitWindowMs') ?? 25_000),
    reaperIntervalMinutes: Number(ctx('reaperIntervalMinutes') ?? 5),
    alarmEmail: ctx('alarmEmail') as string | undefined,
    authCacheSeconds: Number(ctx('authCacheSeconds') ?? 30),
    runtimeUrls: ctx('runtimeUrls') === 'any' ? 'any' : 'public',
    runtimeAllowHttp: String(ctx('runtimeAllowHttp') ?? 'false') === 'true',
    logEvents: String(ctx('logEvents') ?? 'false') === 'true',
  };
}

export function buildApp(app = new App()): { app: App; stack: AgentsStack } {
  const props = propsFromContext(app);
  const stack = new AgentsStack(app, `Agents-${props.stage}`, {
    ...props,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

if (process.argv[1]?.endsWith('infra/app.ts')) {
  buildApp().app.synth();
}
