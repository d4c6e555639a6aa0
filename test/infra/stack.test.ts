import { readFileSync } from 'node:fs';
import aslValidator from 'asl-validator';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { consoleRoutes, routeName, routes } from '../../functions/http/routes.js';
import { buildApp, cdkJsonContext } from '../../infra/app.js';
import { MESSAGE_MAX_RECEIVES, WORKER_TIMEOUT_S, type AgentsStack } from '../../infra/stack.js';
import { ALARMS } from '../../infra/operations.js';
import { STOP_WORKFLOW_ASL, fleetStopWorkflow } from '../../infra/workflow-definition.js';

/** Bundling is skipped here (`aws:cdk:bundling-stacks: []`); `npm run synth` bundles for real. */
const newApp = (context: Record<string, unknown> = {}) =>
  new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...context } });

let stack: AgentsStack;
let template: Template;
beforeAll(() => {
  ({ stack } = buildApp(newApp()));
  template = Template.fromStack(stack);
});

type Resource = { Type: string; Properties: Record<string, any> };
const resources = (type: string) => Object.entries(template.findResources(type) as Record<string, Resource>);
/** Logical id of the function whose handler file is `entry`, found through its log group name. */
const functionId = (name: string) => stack.getLogicalId(stack.functions[name]!.node.defaultChild as never);
const policyActionsOf = (fnName: string): { actions: string[]; resources: unknown[] }[] => {
  const roleId = stack.getLogicalId(stack.functions[fnName]!.role!.node.defaultChild as never);
  return resources('AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
    .map((s: { Action: string | string[]; Resource: unknown }) => ({
      actions: [s.Action].flat(),
      resources: [s.Resource].flat(),
    }));
};

describe('the deployed API', () => {
  it('has exactly the routes of the route table, the console\'s and $default', () => {
    const keys = resources('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey).sort();
    expect(keys).toEqual([...[...routes, ...consoleRoutes].map((r) => `${r.method} ${r.path}`), '$default'].sort());
  });

  it('runs every function on arm64 Node.js 22 with tracing and JSON logs', () => {
    const fns = resources('AWS::Lambda::Function');
    expect(fns.length).toBe(routes.length + 1 + 1 + 3 + 1 + 1 + 1); // routes, the console, $default, stop workflow tasks, fleet stop task, reaper, message worker
    for (const [, f] of fns) {
      expect(f.Properties.Architectures).toEqual(['arm64']);
      expect(f.Properties.Runtime).toBe('nodejs22.x');
      expect(f.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(f.Properties.LoggingConfig.LogFormat).toBe('JSON');
    }
  });

  it('gives the stop function a timeout above the stop window and below API Gateway\'s 30 s', () => {
    const stop = template.findResources('AWS::Lambda::Function')[functionId('StopAgent')] as Resource;
    expect(stop.Properties.Timeout).toBe(29);
    expect(Number(stop.Properties.Environment.Variables.STOP_WAIT_WINDOW_MS)).toBeLessThanOrEqual(26_000);
    expect(() => buildApp(newApp({ stage: 'x', stopWaitWindowMs: 28_000 }))).toThrow(/leaves no room/);
  });

  it('checks API keys in every route\'s function but the public health check, $default included: GetItem on the keys table, and only there', () => {
    const keysTable = stack.getLogicalId(stack.node.findChild('ApiKeysTable').node.defaultChild as never);
    const httpFunctions = [...routes.filter((r) => !r.public).map(routeName), 'NotFound'];
    expect(routes.filter((r) => r.public).map(routeName)).toEqual(['Health']);
    const fns = template.findResources('AWS::Lambda::Function') as Record<string, Resource>;
    for (const name of Object.keys(stack.functions)) {
      const onKeys = policyActionsOf(name).filter((s) => JSON.stringify(s.resources).includes(keysTable));
      const env = fns[functionId(name)]!.Properties.Environment.Variables;
      if (httpFunctions.includes(name)) {
        expect(onKeys, name).toEqual([{ actions: ['dynamodb:GetItem'], resources: [{ 'Fn::GetAtt': [keysTable, 'Arn'] }] }]);
        expect(env.API_KEYS_TABLE, name).toEqual({ Ref: keysTable });
        expect(env.AUTH_CACHE_SECONDS, name).toBe('30');
      } else {
        expect(onKeys, name).toEqual([]);
      }
    }
    // No API Gateway authorizer: its refusals could not be answered in the API's envelope.
    expect(resources('AWS::ApiGatewayV2::Authorizer')).toEqual([]);
    expect(resources('AWS::ApiGatewayV2::Route')).toHaveLength(routes.length + consoleRoutes.length + 1);
  });

  it('serves the console from a function that can reach no table, bus, queue or workflow', () => {
    const actions = policyActionsOf('Console').flatMap((s) => s.actions);
    expect(actions.filter((a) => !a.startsWith('xray:') && !a.startsWith('logs:'))).toEqual([]);
    const env = (template.findResources('AWS::Lambda::Function')[functionId('Console')] as Resource).Properties.Environment.Variables;
    expect(Object.keys(env).filter((k) => k.endsWith('_TABLE'))).toEqual([]);
  });

  it('writes API access logs', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('routeKey') },
    });
  });
});

const machineResource = (which: 'stateMachine' | 'fleetStateMachine') =>
  template.findResources('AWS::StepFunctions::StateMachine')[stack.getLogicalId(stack[which].node.defaultChild as never)] as Resource;

describe('the stop workflow', () => {
  it('is the ASL file with the task function ARNs substituted', () => {
    const machine = machineResource('stateMachine');
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    expect(machine.Properties.DefinitionString).toEqual(readFileSync(STOP_WORKFLOW_ASL, 'utf8'));
    expect(machine.Properties.DefinitionSubstitutions).toEqual({
      CheckDrainFunctionArn: { 'Fn::GetAtt': [functionId('CheckDrainTask'), 'Arn'] },
      FinalizeStopFunctionArn: { 'Fn::GetAtt': [functionId('FinalizeTask'), 'Arn'] },
      RecordStopFailureFunctionArn: { 'Fn::GetAtt': [functionId('RecordFailureTask'), 'Arn'] },
    });
    expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine.Properties.LoggingConfiguration.Level).toBe('ALL');
  });

  it.each(['stateMachine', 'fleetStateMachine'] as const)('%s renders, with the stack\'s substitutions, to a definition asl-validator accepts, whose every task the machine may invoke', (which) => {
    const machine = machineResource(which);
    // As CloudFormation renders it: each ${Name} replaced by its substitution (a function ARN here).
    const arnOf = (id: string) => `arn:aws:lambda:us-east-1:123456789012:function:${id}`;
    const substitutions = machine.Properties.DefinitionSubstitutions as Record<string, { 'Fn::GetAtt': [string, string] }>;
    const rendered = (machine.Properties.DefinitionString as string).replace(/\$\{(\w+)\}/g, (_, name: string) => {
      const sub = substitutions[name];
      if (!sub) throw new Error(`no substitution for \${${name}}`);
      return arnOf(sub['Fn::GetAtt'][0]);
    });
    const definition = JSON.parse(rendered) as { States: Record<string, { Type: string; Resource?: string }> };
    const { isValid, errorsText } = aslValidator(definition);
    expect(isValid, errorsText()).toBe(true);

    const roleId = stack.getLogicalId(stack[which].role.node.defaultChild as never);
    const invocable = resources('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((st: { Action: string | string[] }) => [st.Action].flat().includes('lambda:InvokeFunction'))
      .flatMap((st: { Resource: unknown }) => [st.Resource].flat() as { 'Fn::GetAtt'?: [string, string] }[])
      .map((r) => r['Fn::GetAtt']?.[0])
      .filter(Boolean);
    const tasks = Object.values(definition.States).filter((st) => st.Type === 'Task');
    expect(new Set(tasks.map((t) => t.Resource)).size).toBe(Object.keys(substitutions).length);
    for (const task of tasks) {
      const fnId = task.Resource!.split(':function:')[1]!;
      expect(invocable, task.Resource).toContain(fnId);
    }
  });

  it('may be started by the stop function, on that state machine and nothing broader', () => {
    const machineId = stack.getLogicalId(stack.stateMachine.node.defaultChild as never);
    const starts = policyActionsOf('StopAgent').filter((s) => s.actions.some((a) => a.startsWith('states:')));
    expect(starts).toEqual([{ actions: ['states:StartExecution'], resources: [{ Ref: machineId }] }]);
    for (const name of ['GetAgent', 'ListAgents', 'CreateAgent', 'SendMessage', 'GetFleetStop']) {
      expect(policyActionsOf(name).flatMap((s) => s.actions).filter((a) => a.startsWith('states:'))).toEqual([]);
    }
  });
});

describe('the fleet stop workflow', () => {
  it('is its ASL file, its one task function substituted', () => {
    const machine = machineResource('fleetStateMachine');
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    expect(machine.Properties.DefinitionString).toEqual(readFileSync(fleetStopWorkflow.asl, 'utf8'));
    expect(machine.Properties.DefinitionSubstitutions).toEqual({ FleetStopStepFunctionArn: { 'Fn::GetAtt': [functionId('FleetStopTask'), 'Arn'] } });
  });

  it('is started by POST /agents/stop (and the reaper, for a stalled one) only; its task may start stop workflows (each agent\'s drain)', () => {
    const fleetId = stack.getLogicalId(stack.fleetStateMachine.node.defaultChild as never);
    const stopId = stack.getLogicalId(stack.stateMachine.node.defaultChild as never);
    const starts = (name: string) => policyActionsOf(name).filter((s) => s.actions.some((a) => a.startsWith('states:')));
    expect(starts('StopFleet')).toEqual([{ actions: ['states:StartExecution'], resources: [{ Ref: fleetId }] }]);
    expect(starts('FleetStopTask')).toEqual([{ actions: ['states:StartExecution'], resources: [{ Ref: stopId }] }]);
    expect(starts('Reaper').flatMap((s) => s.resources)).toContainEqual({ Ref: fleetId });
    for (const name of Object.keys(stack.functions).filter((n) => n !== 'StopFleet' && n !== 'Reaper')) {
      expect(JSON.stringify(starts(name)), name).not.toContain(fleetId);
    }
  });
});

describe('least privilege', () => {
  const writes = /^dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem)$/;
  it('gives the read-only functions no write action', () => {
    for (const route of routes.filter((r) => r.method === 'GET')) {
      const name = routeName(route);
      const actions = policyActionsOf(name).flatMap((s) => s.actions);
      // The health check reads nothing at all.
      expect(actions.some((a) => a.startsWith('dynamodb:Get') || a === 'dynamodb:Query'), name).toBe(!route.public);
      expect(actions.filter((a) => writes.test(a) || a.startsWith('events:') || a.startsWith('states:'))).toEqual([]);
    }
  });

  it('lets exactly the functions that publish put events, on the lifecycle bus only', () => {
    const busId = Object.keys(template.findResources('AWS::Events::EventBus'))[0]!;
    const publishing = [...routes.filter((r) => r.publishes).map(routeName), 'FinalizeTask', 'FleetStopTask', 'Reaper', 'MessageWorker'];
    for (const name of publishing) {
      const puts = policyActionsOf(name).filter((s) => s.actions.includes('events:PutEvents'));
      expect(puts, name).toEqual([{ actions: ['events:PutEvents'], resources: [{ 'Fn::GetAtt': [busId, 'Arn'] }] }]);
    }
    for (const name of [...routes.filter((r) => !r.publishes).map(routeName), 'CheckDrainTask', 'RecordFailureTask', 'NotFound']) {
      expect(policyActionsOf(name).some((s) => s.actions.includes('events:PutEvents')), name).toBe(false);
    }
  });
});

describe('the message worker', () => {
  const queueId = () => stack.getLogicalId(stack.messageQueue.node.defaultChild as never);
  const dlqId = () => stack.getLogicalId(stack.messageDeadLetters.node.defaultChild as never);

  it('runs asynchronous messages for up to 15 minutes, one SQS job per invocation, reporting failed jobs', () => {
    const worker = template.findResources('AWS::Lambda::Function')[functionId('MessageWorker')] as Resource;
    expect(worker.Properties.Timeout).toBe(WORKER_TIMEOUT_S);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId('MessageWorker') },
      EventSourceArn: { 'Fn::GetAtt': [queueId(), 'Arn'] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
  });

  it('feeds it from an encrypted queue whose failed jobs go to a dead-letter queue, with an alarm on it', () => {
    const queue = template.findResources('AWS::SQS::Queue')[queueId()] as Resource;
    expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(WORKER_TIMEOUT_S);
    expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    expect(queue.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [dlqId(), 'Arn'] }, maxReceiveCount: MESSAGE_MAX_RECEIVES });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId(), 'QueueName'] } }],
      Threshold: 1,
    });
  });

  it('lets only the functions that send messages or can end a stop put jobs on the queue, and only on that queue', () => {
    const sends = (name: string) => policyActionsOf(name).filter((s) => s.actions.includes('sqs:SendMessage'));
    // A forced stop's close is a job for the worker: every function that can end a stop may queue it.
    const senders = ['SendMessage', 'StopAgent', 'FinalizeTask', 'FleetStopTask', 'Reaper', 'MessageWorker'];
    for (const name of senders) expect(sends(name).flatMap((s) => s.resources), name).toEqual([{ 'Fn::GetAtt': [queueId(), 'Arn'] }]);
    for (const name of Object.keys(stack.functions).filter((n) => !senders.includes(n))) {
      expect(sends(name), name).toEqual([]);
    }
    const receives = policyActionsOf('MessageWorker').filter((s) => s.actions.includes('sqs:ReceiveMessage'));
    expect(receives.flatMap((s) => s.resources)).toEqual([{ 'Fn::GetAtt': [queueId(), 'Arn'] }]);
  });
});

describe('llm API keys', () => {
  it('lets only the functions that run agents or check their keys read secrets, and only those named agents-llm/...', () => {
    const reads = (name: string) => policyActionsOf(name).filter((s) => s.actions.some((a) => a.startsWith('secretsmanager:')));
    for (const name of Object.keys(stack.functions)) {
      const statements = reads(name);
      if (['SendMessage', 'MessageWorker', 'CreateAgent', 'UpdateAgent', 'StartAgent'].includes(name)) {
        expect(statements.some((s) => JSON.stringify(s.resources).includes(':secret:agents-llm/*')), name).toBe(true);
      } else {
        expect(statements.filter((s) => JSON.stringify(s.resources).includes(':secret:agents-llm/*')), name).toEqual([]);
      }
    }
  });
});

describe('a2a tokens', () => {
  it('lets only the functions that call a2a agents or may end a stop read secrets named agents-a2a/...', () => {
    const a2aReads = (name: string) => policyActionsOf(name).filter((s) => JSON.stringify(s.resources).includes(':secret:agents-a2a/*'));
    const readers = ['SendMessage', 'MessageWorker', 'CreateAgent', 'UpdateAgent', 'StartAgent', 'StopAgent', 'FinalizeTask', 'FleetStopTask', 'Reaper'];
    for (const name of Object.keys(stack.functions)) {
      const statements = a2aReads(name);
      if (readers.includes(name)) expect(statements.map((s) => s.actions), name).toEqual([['secretsmanager:GetSecretValue']]);
      else expect(statements, name).toEqual([]);
    }
  });
});

describe('tables and schedule', () => {
  it('keeps every table on demand with point-in-time recovery, the records table with TTL', () => {
    const tables = resources('AWS::DynamoDB::GlobalTable');
    expect(tables).toHaveLength(3);
    for (const [, t] of tables) {
      expect(t.Properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(t.Properties.Replicas[0].PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    }
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'byStatus', Projection: { ProjectionType: 'KEYS_ONLY' } })],
    });
  });

  it('runs the reaper on an EventBridge schedule', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId('Reaper'), 'Arn'] } })],
    });
  });

  it('alarms on what the service promises, each with its runbook line, to an SNS topic when an email is given', () => {
    const alarms = resources('AWS::CloudWatch::Alarm').map(([, a]) => a);
    const byName = Object.fromEntries(alarms.map((a) => [a.Properties.AlarmName as string, a.Properties]));
    expect(Object.keys(byName).sort()).toEqual(Object.keys(ALARMS).map((n) => `agents-dev-${n}`).sort());
    for (const [name, { threshold, description }] of Object.entries(ALARMS)) {
      const alarm = byName[`agents-dev-${name}`]!;
      expect(alarm.Threshold, name).toBe(threshold);
      expect(alarm.AlarmDescription, name).toBe(description);
      expect(description, name).toContain('Runbook: ');
      expect(alarm.TreatMissingData, name).toBe('notBreaching');
      expect(alarm.AlarmActions, name).toBeUndefined();
    }
    // A rate, not a count: more than 20% of at least 5 graceful stops in 15 minutes timed out.
    const timedOut = byName['agents-dev-TimedOutStops']!;
    expect(timedOut.ComparisonOperator).toBe('GreaterThanThreshold');
    const expression = (timedOut.Metrics as { Expression?: string; MetricStat?: { Metric: { MetricName: string; Namespace: string; Dimensions: { Name: string; Value: string }[] }; Period: number } }[]);
    expect(expression.find((m) => m.Expression)?.Expression).toBe('IF(drained + timedOut >= 5, 100 * timedOut / (drained + timedOut), 0)');
    expect(expression.filter((m) => m.MetricStat).map((m) => [m.MetricStat!.Metric.Namespace, m.MetricStat!.Metric.MetricName, m.MetricStat!.Metric.Dimensions, m.MetricStat!.Period])).toEqual([
      ['AgentsLifecycle', 'StopsEnded', [{ Name: 'outcome', Value: 'drained' }, { Name: 'service', Value: 'agents' }], 900],
      ['AgentsLifecycle', 'StopsEnded', [{ Name: 'outcome', Value: 'timed_out' }, { Name: 'service', Value: 'agents' }], 900],
    ]);
    // A stuck stop: any the reaper had to end.
    expect(byName['agents-dev-StuckStops']).toMatchObject({ MetricName: 'ReaperHeals', Namespace: 'AgentsLifecycle', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    // Throttling and 5xx must last two periods.
    expect(byName['agents-dev-TableThrottling']!.EvaluationPeriods).toBe(2);
    expect(byName['agents-dev-ApiServerErrors']!.EvaluationPeriods).toBe(2);
    expect(resources('AWS::SNS::Topic')).toHaveLength(0);

    const withEmail = Template.fromStack(buildApp(newApp({ alarmEmail: 'ops@example.com' })).stack);
    withEmail.resourceCountIs('AWS::SNS::Topic', 1);
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const topic = Object.keys(withEmail.findResources('AWS::SNS::Topic'))[0]!;
    for (const alarm of Object.values(withEmail.findResources('AWS::CloudWatch::Alarm')) as Resource[]) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.Properties.OKActions).toEqual([{ Ref: topic }]);
    }
  });

  it('sends the lifecycle events to a log group only when asked (-c logEvents=true), by a rule on the bus', () => {
    expect(resources('AWS::Events::Rule').filter(([, r]) => r.Properties.EventPattern)).toHaveLength(0);
    const withRule = Template.fromStack(buildApp(newApp({ logEvents: 'true' })).stack);
    withRule.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: Match.anyValue(),
      EventPattern: { source: ['agents.lifecycle'] },
      Targets: [Match.objectLike({ Arn: Match.anyValue() })],
    });
  });

  it('has one dashboard over the metrics the functions emit', () => {
    const dashboards = resources('AWS::CloudWatch::Dashboard').map(([, d]) => d);
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]!.Properties.DashboardBody);
    for (const metric of ['StopsEnded', 'DrainDuration', 'DeadlineToCommit', 'MessagesEnded', 'RuntimeLatency', 'RuntimeFailures', 'AdmissionsRefused', 'HeartbeatsLost', 'ReaperHeals', 'StopRecoveries', 'FleetStopsEnded', 'FleetStopAgents']) {
      expect(body, metric).toContain(`\\"AgentsLifecycle\\",\\"${metric}\\"`);
    }
    for (const aws of ['ReadThrottleEvents', 'WriteThrottleEvents', 'SystemErrors', 'ExecutionsFailed', 'ApproximateNumberOfMessagesVisible', '5xx', 'Latency']) expect(body, aws).toContain(aws);
  });

  it('traces every function with X-Ray, its role allowed to send the segments', () => {
    for (const name of Object.keys(stack.functions)) {
      expect((template.findResources('AWS::Lambda::Function')[functionId(name)] as Resource).Properties.TracingConfig, name).toEqual({ Mode: 'Active' });
      expect(policyActionsOf(name).flatMap((s) => s.actions), name).toEqual(expect.arrayContaining(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']));
    }
  });
});

describe('cdk-nag', () => {
  it('reports no unacknowledged AwsSolutions finding', () => {
    const { app } = buildApp(newApp());
    expect(() => app.synth()).not.toThrow();
  });

  it('reports none either for a stack with a concrete account and region (as `cdk synth` and deploy build it)', () => {
    const saved = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
    process.env.CDK_DEFAULT_ACCOUNT = '123456789012';
    process.env.CDK_DEFAULT_REGION = 'eu-west-1';
    try {
      const { app } = buildApp(newApp());
      expect(() => app.synth()).not.toThrow();
    } finally {
      for (const [name, value] of [['CDK_DEFAULT_ACCOUNT', saved.account], ['CDK_DEFAULT_REGION', saved.region]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('fails synthesis on an unacknowledged finding', () => {
    const { app, stack: s } = buildApp(newApp());
    new Bucket(s, 'UnencryptedLogs');
    expect(() => app.synth()).toThrow(/AwsSolutions|Validation failed/);
  });
});
