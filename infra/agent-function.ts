import { Aws, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';

/** Secrets an llm agent may name for its API key (the only ones the functions may read). */
export const LLM_SECRET_PREFIX = 'agents-llm/';
export const A2A_SECRET_PREFIX = 'agents-a2a/';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface AgentFunctionProps {
  /** Path of the handler file from the project root, e.g. functions/http/stop-agent.ts. */
  entry: string;
  timeout?: Duration;
  memorySize?: number;
  logRetention: RetentionDays;
  removalPolicy: RemovalPolicy;
  environment?: Record<string, string>;
  /**
   * Runs agents' messages: only then does the function carry the `openai` client (about 420 KB,
   * for llm agents), and beside its bundle, not in it (see `openAiBeside`); the other functions
   * only ever close an llm agent, which does not load it.
   */
  runsMessages?: boolean;
  /**
   * Calls a2a agents (messages, the card check) or may end a stop (cancelling their tasks): only
   * then does the function carry `@a2a-js/sdk`'s client (about 130 KB), beside its bundle (see
   * `besideTheBundle`), and read secrets named `agents-a2a/...`.
   */
  callsA2A?: boolean;
}

/**
 * The `openai` client of the functions that run messages: bundled by the same esbuild into one
 * minified module installed beside the function's bundle (`node_modules/openai`), where the bundle's
 * `import('openai')` finds it at an llm agent's first message. The bundle itself stays small, so a
 * cold start of an echo or http agent's function neither loads nor parses it.
 */
const openAiBeside = (inputDir: string, outputDir: string) => [
  `"${inputDir}/node_modules/.bin/esbuild" "${inputDir}/node_modules/openai/index.mjs" --bundle --platform=node --format=esm --target=node22 --minify --log-level=warning --outfile="${outputDir}/node_modules/openai/index.mjs"`,
  `echo '{"name":"openai","type":"module","exports":"./index.mjs"}' > "${outputDir}/node_modules/openai/package.json"`,
];
/** `@a2a-js/sdk/client` alike, for the functions that call a2a agents; the rest of the SDK stays out. */
const a2aClientBeside = (inputDir: string, outputDir: string) => [
  `"${inputDir}/node_modules/.bin/esbuild" "${inputDir}/node_modules/@a2a-js/sdk/dist/client/index.js" --bundle --platform=node --format=esm --target=node22 --minify --log-level=warning --outfile="${outputDir}/node_modules/@a2a-js/sdk/client.mjs"`,
  `echo '{"name":"@a2a-js/sdk","type":"module","exports":{"./client":"./client.mjs"}}' > "${outputDir}/node_modules/@a2a-js/sdk/package.json"`,
];
/** Installs the clients a function may load on first use beside its bundle (see openAiBeside). */
const besideTheBundle = (props: Pick<AgentFunctionProps, 'runsMessages' | 'callsA2A'>) => ({
  beforeBundling: () => [],
  beforeInstall: () => [],
  afterBundling: (inputDir: string, outputDir: string) => [
    ...(props.runsMessages ? openAiBeside(inputDir, outputDir) : []),
    ...(props.callsA2A ? a2aClientBeside(inputDir, outputDir) : []),
  ],
});

/**
 * The house Lambda: NodejsFunction bundled by the local esbuild, arm64, Node 22, source maps,
 * JSON logs into an explicit log group with retention, X-Ray tracing. Access is added with the
 * bind* helpers, each granting the narrowest action set and wiring its environment variable.
 */
export class AgentFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: AgentFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, { retention: props.logRetention, removalPolicy: props.removalPolicy });
    super(scope, id, {
      entry: `${PROJECT_ROOT}${props.entry}`,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      handler: 'handler',
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      tracing: Tracing.ACTIVE,
      loggingFormat: LoggingFormat.JSON,
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'agents',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        // esbuild reports warnings and errors, not the size of every file it writes.
        logLevel: LogLevel.WARNING,
        // ESM bundles still meet CommonJS dependencies that call require().
        banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
        mainFields: ['module', 'main'],
        // The runtime's AWS SDK, openai and the a2a client (see besideTheBundle). The SDK's own
        // `@smithy/*` packages stay with it; the one the X-Ray SDK requires (an older major than
        // the runtime's) is bundled.
        externalModules: ['@aws-sdk/*', 'openai', '@a2a-js/sdk', '@a2a-js/sdk/*'],
        ...((props.runsMessages || props.callsA2A) && { commandHooks: besideTheBundle(props) }),
        // esbuild's account of each bundle's contents, for `npm run bench:bundles` only (not deployed).
        metafile: process.env.BUNDLE_METAFILE === '1',
      },
    });
    Validations.of(this).acknowledge(
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'The basic execution policy only lets the function write its own logs; it is the documented minimum for Lambda.',
      },
      {
        id: 'AwsSolutions-L1',
        reason: 'Node.js 22 is the runtime the project is built and tested on (local stack and CI run Node 22).',
      },
    );
    Validations.of(this.role!).acknowledge(
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'The basic execution policy only lets the function write its own logs; it is the documented minimum for Lambda.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray PutTraceSegments/PutTelemetryRecords do not support resource-level permissions.',
      },
    );
    if (props.callsA2A) {
      this.bindSecrets(A2A_SECRET_PREFIX, 'An a2a agent names its token secret at runtime; the grant is limited to the agents-a2a/ prefix reserved for those tokens.');
    }
  }

  /** Read or read-write access to a table (and its indexes), and its name in `envName`. */
  bindTable(envName: string, table: ITableV2, access: 'read' | 'write', hasIndexes: boolean): this {
    if (access === 'read') table.grantReadData(this);
    else table.grantReadWriteData(this);
    this.addEnvironment(envName, table.tableName);
    if (hasIndexes) {
      Validations.of(this.role!).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${this.stack.getLogicalId(table.node.defaultChild as never)}.Arn>/index/*]`,
        reason: 'Querying the table\'s own indexes (byStatus) needs its index ARNs; the grant is scoped to this table.',
      });
    }
    return this;
  }

  /** The API keys: GetItem only (a key is looked up by its id), and how long a verified key is trusted. */
  bindApiKeys(table: ITableV2, cacheSeconds: number): this {
    table.grant(this, 'dynamodb:GetItem');
    this.addEnvironment('API_KEYS_TABLE', table.tableName);
    this.addEnvironment('AUTH_CACHE_SECONDS', String(cacheSeconds));
    return this;
  }

  /**
   * The `llm` runtime's API keys: GetSecretValue on secrets named `agents-llm/...` only (agents
   * name their key's secret; the service's other secrets stay out of reach).
   */
  bindLlmSecrets(): this {
    return this.bindSecrets(LLM_SECRET_PREFIX, 'An llm agent names its API key secret at runtime; the grant is limited to the agents-llm/ prefix reserved for those keys.');
  }

  private bindSecrets(prefix: string, reason: string): this {
    // Pseudo parameters, not the stack's env: the same ARN (and cdk-nag finding) in every environment.
    const arn = `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${prefix}*`;
    this.addToRolePolicy(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [arn] }));
    Validations.of(this.role!).acknowledge({ id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${prefix}*]`, reason });
    return this;
  }

  bindEventBus(bus: IEventBus): this {
    bus.grantPutEventsTo(this);
    this.addEnvironment('EVENT_BUS_NAME', bus.eventBusName);
    return this;
  }

  bindMessageQueue(queue: IQueue): this {
    queue.grantSendMessages(this);
    this.addEnvironment('MESSAGE_QUEUE_URL', queue.queueUrl);
    return this;
  }

  bindStopWorkflow(stateMachine: IStateMachine): this {
    stateMachine.grantStartExecution(this);
    this.addEnvironment('STOP_STATE_MACHINE_ARN', stateMachine.stateMachineArn);
    return this;
  }

  bindFleetStopWorkflow(stateMachine: IStateMachine): this {
    stateMachine.grantStartExecution(this);
    this.addEnvironment('FLEET_STOP_STATE_MACHINE_ARN', stateMachine.stateMachineArn);
    return this;
  }
}
