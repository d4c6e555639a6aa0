import { readFileSync } from 'node:fs';
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { CfnStage, HttpApi, HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, Billing, ProjectionType, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { CloudWatchLogGroup, LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { EVENT_SOURCE } from '../functions/adapters/aws.js';
import { functionAccess, type TableAccess } from '../functions/adapters/dynamodb/grants.js';
import { agentsTable, apiKeysTable, recordsTable, type TableDef } from '../functions/adapters/dynamodb/tables.js';
import { API_GATEWAY_LIMIT_S, LONGEST_ROUTE_TIMEOUT_S, consoleRoutes, fallbackRoute, routeName, routes } from '../functions/http/routes.js';
import { AgentFunction } from './agent-function.js';
import { Operations } from './operations.js';
import { fleetStopWorkflow, stopWorkflow, type WorkflowDefinition } from './workflow-definition.js';

export interface AgentsStackProps extends StackProps {
  stage: string;
  logRetentionDays: RetentionDays;
  /** Keep tables (deletion protection, RETAIN) when the stack is deleted. */
  retainData: boolean;
  /** How long POST /stop waits for the outcome; must leave room under API Gateway's 30 s limit. */
  stopWaitWindowMs: number;
  reaperIntervalMinutes: number;
  /** Where alarms are sent; no topic is created without it. */
  alarmEmail?: string;
  /** How long a function trusts a verified API key: a revoked key works up to this long. */
  authCacheSeconds: number;
  /** Where the http runtime may call: `public` (default) refuses loopback, private and link-local addresses. */
  runtimeUrls: 'public' | 'any';
  /** Whether runtimes may be called over plain http:// (default: https only). */
  runtimeAllowHttp: boolean;
  /** An example subscriber: a rule sending every lifecycle event to a log group (off by default). */
  logEvents?: boolean;
}

const STOP_FUNCTION_TIMEOUT_S = LONGEST_ROUTE_TIMEOUT_S;
/** Lambda's limit: asynchronous messages may run this long on the worker. */
export const WORKER_TIMEOUT_S = 900;
/** Deliveries of a message job before it goes to the dead-letter queue. */
export const MESSAGE_MAX_RECEIVES = 3;

export class AgentsStack extends Stack {
  readonly api: HttpApi;
  readonly stateMachine: StateMachine;
  readonly fleetStateMachine: StateMachine;
  readonly messageQueue: Queue;
  readonly messageDeadLetters: Queue;
  readonly functions: Record<string, AgentFunction> = {};
  readonly operations: Operations;

  constructor(scope: Construct, id: string, props: AgentsStackProps) {
    super(scope, id, props);
    if (props.stopWaitWindowMs > (STOP_FUNCTION_TIMEOUT_S - 3) * 1000) {
      throw new Error(
        `stopWaitWindowMs ${props.stopWaitWindowMs} leaves no room under the stop function's ${STOP_FUNCTION_TIMEOUT_S} s timeout ` +
          `(API Gateway allows ${API_GATEWAY_LIMIT_S} s): use ${(STOP_FUNCTION_TIMEOUT_S - 3) * 1000} or less`,
      );
    }
    const removalPolicy = props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRemoval = RemovalPolicy.DESTROY;

    const agents = this.table('AgentsTable', agentsTable, props.retainData, removalPolicy);
    const records = this.table('RecordsTable', recordsTable, props.retainData, removalPolicy);
    const apiKeys = this.table('ApiKeysTable', apiKeysTable, props.retainData, removalPolicy);
    const bus = new EventBus(this, 'LifecycleBus', { eventBusName: `agents-lifecycle-${props.stage}` });

    const fn = (name: string, entry: string, extra: { timeout?: number; environment?: Record<string, string>; runsMessages?: boolean; callsA2A?: boolean } = {}) => {
      const f = new AgentFunction(this, name, {
        entry,
        runsMessages: extra.runsMessages,
        callsA2A: extra.callsA2A,
        timeout: extra.timeout ? Duration.seconds(extra.timeout) : undefined,
        logRetention: props.logRetentionDays,
        removalPolicy: logRemoval,
        environment: { STOP_WAIT_WINDOW_MS: String(props.stopWaitWindowMs), RUNTIME_URLS: props.runtimeUrls, RUNTIME_ALLOW_HTTP: props.runtimeAllowHttp ? '1' : '0', ...extra.environment },
      });
      this.functions[name] = f;
      return f;
    };
    // Each function gets exactly the tables it uses: granted, and named in its environment.
    const withTables = (f: AgentFunction, access: TableAccess) => {
      if (access.agents !== 'none') f.bindTable('AGENTS_TABLE', agents, access.agents, true);
      if (access.records !== 'none') f.bindTable('RECORDS_TABLE', records, access.records, false);
      return f;
    };

    // The message worker's queue: asynchronous messages (docs/ARCHITECTURE.md: the worker is fed by SQS), and the runtime
    // closes of forced stops (sent by every function that can end a stop).
    this.messageDeadLetters = new Queue(this, 'MessageDeadLetters', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.messageQueue = new Queue(this, 'MessageQueue', {
      // Lambda requires it to cover the worker's timeout. A redelivery while a job runs is harmless:
      // the running worker's claim fences it.
      visibilityTimeout: Duration.seconds(WORKER_TIMEOUT_S + 60),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.messageDeadLetters, maxReceiveCount: MESSAGE_MAX_RECEIVES },
    });
    // A workflow: its one ASL file, its task ARNs substituted, each task function with the access it declares.
    // finalizesStops: may end a stop, and so cancel an a2a agent's tasks (it reads their tokens)
    // and queue a forced stop's close for the worker.
    type TaskExtras = { publishes?: boolean; startsStops?: boolean; finalizesStops?: boolean };
    const machine = <W extends WorkflowDefinition>(id: string, workflow: W, extras: Partial<Record<keyof W['tasks'], TaskExtras>>) => {
      const taskFunctions = Object.entries(workflow.tasks).map(([sub, task]) => {
        const a = extras[sub as keyof W['tasks']] ?? {};
        const f = withTables(fn(task.function, `functions/workflow/${task.handler}.ts`, { timeout: a.startsStops ? 300 : undefined, callsA2A: a.finalizesStops }), functionAccess[task.grants]);
        if (a.publishes) f.bindEventBus(bus);
        if (a.finalizesStops) f.bindMessageQueue(this.messageQueue);
        return [sub, f] as const;
      });
      const logs = new LogGroup(this, `${id}Logs`, { retention: props.logRetentionDays, removalPolicy: logRemoval });
      const stateMachine = new StateMachine(this, id, {
        stateMachineType: StateMachineType.STANDARD,
        // Inline (not an S3 asset), so the template shows the very definition the local interpreter runs.
        definitionBody: DefinitionBody.fromString(readFileSync(workflow.asl, 'utf8')),
        definitionSubstitutions: Object.fromEntries(taskFunctions.map(([sub, f]) => [sub, f.functionArn])),
        tracingEnabled: true,
        logs: { destination: logs, level: LogLevel.ALL, includeExecutionData: true },
      });
      for (const [, f] of taskFunctions) {
        f.grantInvoke(stateMachine);
        Validations.of(stateMachine.role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(f.node.defaultChild as never)}.Arn>:*]`,
          reason: 'Invoking a task function includes its versions and aliases (grantInvoke); scoped to that one function.',
        });
      }
      Validations.of(stateMachine.role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'Step Functions log delivery and X-Ray actions do not support resource-level permissions.',
      });
      return { stateMachine, taskFunctions: Object.fromEntries(taskFunctions) as Record<keyof W['tasks'], AgentFunction> };
    };

    // The drain workflow of one stop.
    this.stateMachine = machine('StopWorkflow', stopWorkflow, {
      FinalizeStopFunctionArn: { publishes: true, finalizesStops: true },
    }).stateMachine;
    // The fleet stop: its step stops agents with the one-agent stop code (so it may start their drain workflows).
    const fleet = machine('FleetStopWorkflow', fleetStopWorkflow, {
      FleetStopStepFunctionArn: { publishes: true, startsStops: true, finalizesStops: true },
    });
    this.fleetStateMachine = fleet.stateMachine;
    fleet.taskFunctions.FleetStopStepFunctionArn.bindStopWorkflow(this.stateMachine);

    const worker = withTables(fn('MessageWorker', 'functions/worker/process-message.ts', { timeout: WORKER_TIMEOUT_S, runsMessages: true, callsA2A: true }), functionAccess.MessageWorker)
      .bindEventBus(bus)
      .bindLlmSecrets()
      // Its completions may end a stop, forced meanwhile: its close goes back on this queue.
      .bindMessageQueue(this.messageQueue);
    worker.addEventSource(new SqsEventSource(this.messageQueue, { batchSize: 1, reportBatchItemFailures: true }));

    // The HTTP API: one route and one function per entry of the route table, and $default.
    const accessLogs = new LogGroup(this, 'ApiAccessLogs', { retention: props.logRetentionDays, removalPolicy: logRemoval });
    // Bearer API keys are checked inside every route's function (functions/auth/authenticate.ts),
    // $default included, so a refusal is a 401 in the API's envelope (an HTTP API authorizer's
    // refusal is API Gateway's own body, which HTTP APIs cannot customize).
    const notFound = fn('NotFound', `functions/http/${fallbackRoute.handler}.ts`).bindApiKeys(apiKeys, props.authCacheSeconds);
    this.api = new HttpApi(this, 'Api', {
      apiName: `agents-${props.stage}`,
      description: 'Agents lifecycle API',
      defaultIntegration: new HttpLambdaIntegration('NotFoundIntegration', notFound),
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Every route, $default included, authenticates Bearer API keys in its function (functions/auth/authenticate.ts, ' +
        'tested per route), so refusals keep the API\'s JSON envelope; an HTTP API authorizer cannot.',
    });
    for (const route of routes) {
      const name = routeName(route);
      // Calls a2a agents (messages, the card check) or may finalize a stop (cancelling their tasks).
      const callsA2A = route.runsRuntimes || route.checksModelKeys || route.startsWorkflow;
      const f = withTables(fn(name, `functions/http/${route.handler}.ts`, { timeout: route.timeoutSeconds, runsMessages: route.runsRuntimes, callsA2A }), route);
      if (!route.public) f.bindApiKeys(apiKeys, props.authCacheSeconds);
      if (route.publishes) f.bindEventBus(bus);
      if (route.startsWorkflow) f.bindStopWorkflow(this.stateMachine);
      if (route.startsFleetWorkflow) f.bindFleetStopWorkflow(this.fleetStateMachine);
      if (route.queuesMessages) f.bindMessageQueue(this.messageQueue);
      if (route.runsRuntimes || route.checksModelKeys) f.bindLlmSecrets();
      this.api.addRoutes({ path: route.path, methods: [HttpMethod[route.method]], integration: new HttpLambdaIntegration(`${name}Integration`, f) });
    }
    // The operator console on the API's own origin: one function serving its page and files from
    // its bundle (console/build.ts). No table and no key check: it serves the same static files to
    // everyone, and every call the page makes is an API route that checks the key.
    const consoleFunction = fn(routeName(consoleRoutes[0]!), `functions/http/${consoleRoutes[0]!.handler}.ts`);
    const consoleIntegration = new HttpLambdaIntegration('ConsoleIntegration', consoleFunction);
    for (const route of consoleRoutes) this.api.addRoutes({ path: route.path, methods: [HttpMethod.GET], integration: consoleIntegration });
    const stage = this.api.defaultStage!.node.defaultChild as CfnStage;
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        method: '$context.httpMethod',
        path: '$context.path',
        routeKey: '$context.routeKey',
        status: '$context.status',
        latencyMs: '$context.responseLatency',
        integrationError: '$context.integrationErrorMessage',
      }),
    };
    stage.defaultRouteSettings = { throttlingBurstLimit: 200, throttlingRateLimit: 100 };

    // The idle reaper, on an EventBridge schedule.
    const reaper = withTables(fn('Reaper', 'functions/scheduled/reaper.ts', { timeout: 120, callsA2A: true }), functionAccess.Reaper)
      .bindEventBus(bus)
      .bindMessageQueue(this.messageQueue)
      .bindStopWorkflow(this.stateMachine)
      .bindFleetStopWorkflow(this.fleetStateMachine);
    new Rule(this, 'ReaperSchedule', {
      description: 'Stops idle agents and heals stuck stops',
      schedule: Schedule.rate(Duration.minutes(props.reaperIntervalMinutes)),
      targets: [new LambdaFunction(reaper, { retryAttempts: 0 })],
    });

    if (props.logEvents) {
      // The rule a subscriber adds: every lifecycle event of the bus, here into a log group.
      const events = new LogGroup(this, 'LifecycleEventLogs', { retention: props.logRetentionDays, removalPolicy: logRemoval });
      new Rule(this, 'LifecycleEventsToLogs', {
        description: 'Example subscriber: every lifecycle event, into a log group',
        eventBus: bus,
        eventPattern: { source: [EVENT_SOURCE] },
        targets: [new CloudWatchLogGroup(events)],
      });
      // The target lets EventBridge write to the log group through a resource policy, which CDK
      // puts with its own custom resource: acknowledged on those constructs only.
      for (const child of this.node.children) {
        if (child.node.id === 'AWS679f53fac002430cb0da5b7982bd2287') {
          Validations.of(child).acknowledge({
            id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
            reason: "CDK's custom resource provider that puts the log group's resource policy; the basic execution policy only lets it write its own logs.",
          });
        }
        if (child.node.id.startsWith('EventsLogGroupPolicy')) {
          Validations.of(child).acknowledge({
            id: 'AwsSolutions-IAM5[Resource::*]',
            reason: 'logs:PutResourcePolicy and logs:DeleteResourcePolicy act on the account\'s resource policies and have no resource-level permissions.',
          });
        }
      }
    }
    this.operations = new Operations(this, 'Operations', {
      stage: props.stage,
      api: this.api,
      tables: { agents, records, apiKeys },
      stopWorkflow: this.stateMachine,
      fleetStopWorkflow: this.fleetStateMachine,
      deadLetters: this.messageDeadLetters,
      alarmEmail: props.alarmEmail,
    });
    new CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint });
    new CfnOutput(this, 'EventBusName', { value: bus.eventBusName });
    new CfnOutput(this, 'ApiKeysTableName', { value: apiKeys.tableName });
    new CfnOutput(this, 'AgentsTableName', { value: agents.tableName });
    new CfnOutput(this, 'RecordsTableName', { value: records.tableName });
    new CfnOutput(this, 'StopWorkflowArn', { value: this.stateMachine.stateMachineArn });
    new CfnOutput(this, 'FleetStopWorkflowArn', { value: this.fleetStateMachine.stateMachineArn });
  }

  private table(id: string, def: TableDef, retain: boolean, removalPolicy: RemovalPolicy): TableV2 {
    const key = (k: TableDef['partitionKey']) => ({ name: k.name, type: k.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER });
    return new TableV2(this, id, {
      partitionKey: key(def.partitionKey),
      ...(def.sortKey && { sortKey: key(def.sortKey) }),
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      removalPolicy,
      ...(def.timeToLiveAttribute && { timeToLiveAttribute: def.timeToLiveAttribute }),
      globalSecondaryIndexes: def.indexes.map((i) => ({
        indexName: i.indexName,
        partitionKey: key(i.partitionKey),
        sortKey: key(i.sortKey),
        projectionType: ProjectionType.KEYS_ONLY,
      })),
    });
  }
}
