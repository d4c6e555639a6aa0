import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Alias } from 'aws-cdk-lib/aws-kms';
import { Subscription, SubscriptionProtocol, Topic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE } from '../functions/adapters/metrics.js';
import type { MetricName } from '../functions/agents/ports.js';

const FIVE_MINUTES = Duration.minutes(5);
const OUTCOMES = ['drained', 'timed_out', 'forced'] as const;
const MESSAGE_OUTCOMES = ['completed', 'failed', 'interrupted'] as const;
const RUNTIMES = ['echo', 'http', 'llm', 'a2a'] as const;

/** The alarms: each on a promise the service makes, with what to do when it fires. */
export const ALARMS = {
  TimedOutStops: {
    threshold: 20,
    description:
      'More than 20% of graceful stops in 15 minutes reached their deadline with work still running (at least 5 stops). ' +
      'Runbook: on the dashboard, compare drain duration p95 with the stops\' timeouts and look at runtime latency by runtime; ' +
      'GET /agents/{agentId}/stops names the interrupted messages. Raise the timeout callers give, or fix the slow runtime.',
  },
  StuckStops: {
    threshold: 1,
    description:
      'The reaper ended a stop that was past its deadline plus grace: its workflow died, failed or never started, so the agent stayed stopping. ' +
      'Runbook: find the stop\'s executions in the stop workflow (named by stopId) and its log lines by its correlationId (GET /agents/{agentId}/stops); ' +
      'a StopWorkflowsFailed alarm at the same time names the cause.',
  },
  StopWorkflowsFailed: {
    threshold: 1,
    description:
      'A stop workflow failed past its retries and its recovery window (STOP_RECOVERY_MS past the deadline), or a fleet stop workflow past its retries: an agent is stopping with a recorded failure (its stop answers 500) or a fleet stop is recorded failed. ' +
      'Runbook: open the failed execution in Step Functions for its error; force-stop the agent (POST /agents/{agentId}/stop {"graceful":false}) or start another fleet stop for the rest.',
  },
  TableThrottling: {
    threshold: 10,
    description:
      'The tables throttled requests for 10 minutes (10 or more per 5 minutes): callers are getting 503s. ' +
      'Runbook: the dashboard shows which table; one agent above about 500 messages/s (its item\'s partition) or the account\'s on-demand limit. ' +
      'Raise the table\'s or the account\'s on-demand throughput limit, or spread the load over agents.',
  },
  MessageDeadLetters: {
    threshold: 1,
    description:
      'Jobs the worker failed to run after every delivery are in the dead-letter queue: a message (settled failed when its lease expires) or a force stop\'s close (kind "close": its agent is inactive, its runtime was not told). ' +
      'Runbook: read a job from the queue for its agentId and messageId or stopId, then the MessageWorker logs by its correlationId; purge the queue once understood.',
  },
  ApiServerErrors: {
    threshold: 1,
    description:
      'More than 1% of API requests answered 5xx for 10 minutes (at least 20 requests per 5 minutes). ' +
      'Runbook: 503s are the store throttling or unreachable (see TableThrottling); 500s are bugs: search the functions\' logs for "unhandled error" with the X-Request-Id a client quotes.',
  },
} as const;

export interface OperationsProps {
  stage: string;
  api: HttpApi;
  tables: Record<string, TableV2>;
  stopWorkflow: StateMachine;
  fleetStopWorkflow: StateMachine;
  deadLetters: Queue;
  alarmEmail?: string;
}

/** A metric the functions emit (EMF), with exactly the dimension set they emit it with. */
const product = (name: MetricName, dims: Record<string, string>, statistic = 'Sum', label?: string) =>
  new Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: { service: SERVICE, ...dims }, statistic, period: FIVE_MINUTES, label });

/**
 * What an operator looks at: one dashboard, and few alarms, each on a promise (stops end by
 * their deadline, none is left stopping, the tables and the API answer, no job is dropped), sent
 * to an SNS topic when an email is given.
 */
export class Operations extends Construct {
  readonly dashboard: Dashboard;
  readonly alarms: Record<keyof typeof ALARMS, Alarm>;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const topic = props.alarmEmail
      ? new Topic(this, 'AlarmTopic', { enforceSSL: true, masterKey: Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns') })
      : undefined;
    if (topic && props.alarmEmail) new Subscription(this, 'AlarmEmail', { topic, protocol: SubscriptionProtocol.EMAIL, endpoint: props.alarmEmail });

    const stopsBy = Object.fromEntries(OUTCOMES.map((o) => [o, product('StopsEnded', { outcome: o }, 'Sum', o)])) as Record<(typeof OUTCOMES)[number], Metric>;
    const timedOutShare = new MathExpression({
      expression: 'IF(drained + timedOut >= 5, 100 * timedOut / (drained + timedOut), 0)',
      usingMetrics: { drained: stopsBy.drained.with({ period: Duration.minutes(15) }), timedOut: stopsBy.timed_out.with({ period: Duration.minutes(15) }) },
      period: Duration.minutes(15),
      label: 'graceful stops timed out, %',
    });
    const stuckStops = product('ReaperHeals', { kind: 'stop' }, 'Sum', 'stops ended by the reaper');
    const workflowFailures = new MathExpression({
      expression: 'stopFailed + stopTimedOut + fleetFailed + fleetTimedOut',
      usingMetrics: {
        stopFailed: props.stopWorkflow.metricFailed({ period: FIVE_MINUTES }),
        stopTimedOut: props.stopWorkflow.metricTimedOut({ period: FIVE_MINUTES }),
        fleetFailed: props.fleetStopWorkflow.metricFailed({ period: FIVE_MINUTES }),
        fleetTimedOut: props.fleetStopWorkflow.metricTimedOut({ period: FIVE_MINUTES }),
      },
      period: FIVE_MINUTES,
      label: 'workflow executions failed or timed out',
    });
    const throttles = Object.entries(props.tables).flatMap(([name, table]) =>
      (['ReadThrottleEvents', 'WriteThrottleEvents'] as const).map((m) =>
        new Metric({ namespace: 'AWS/DynamoDB', metricName: m, dimensionsMap: { TableName: table.tableName }, statistic: 'Sum', period: FIVE_MINUTES, label: `${name} ${m}` }),
      ),
    );
    const throttled = new MathExpression({
      expression: throttles.map((_, i) => `t${i}`).join(' + '),
      usingMetrics: Object.fromEntries(throttles.map((m, i) => [`t${i}`, m])),
      period: FIVE_MINUTES,
      label: 'throttled requests, all tables',
    });
    const deadLetters = props.deadLetters.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: 'Maximum', label: 'jobs dead-lettered' });
    const requests = props.api.metricCount({ period: FIVE_MINUTES, label: 'requests' });
    const serverErrors = props.api.metricServerError({ period: FIVE_MINUTES, label: '5xx' });
    const serverErrorShare = new MathExpression({
      expression: 'IF(requests >= 20, 100 * errors / requests, 0)',
      usingMetrics: { requests, errors: serverErrors },
      period: FIVE_MINUTES,
      label: 'requests answered 5xx, %',
    });

    const alarm = (name: keyof typeof ALARMS, metric: IMetric, evaluationPeriods = 1) => {
      const a = new Alarm(this, name, {
        alarmName: `agents-${props.stage}-${name}`,
        metric,
        threshold: ALARMS[name].threshold,
        evaluationPeriods,
        comparisonOperator:
          name === 'TimedOutStops' || name === 'ApiServerErrors' ? ComparisonOperator.GREATER_THAN_THRESHOLD : ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: ALARMS[name].description,
      });
      if (topic) {
        a.addAlarmAction(new SnsAction(topic));
        a.addOkAction(new SnsAction(topic));
      }
      return a;
    };
    this.alarms = {
      TimedOutStops: alarm('TimedOutStops', timedOutShare),
      // Plain metrics, unlabelled (a label makes an alarm's metric a math expression).
      StuckStops: alarm('StuckStops', product('ReaperHeals', { kind: 'stop' })),
      StopWorkflowsFailed: alarm('StopWorkflowsFailed', workflowFailures),
      TableThrottling: alarm('TableThrottling', throttled, 2),
      MessageDeadLetters: alarm('MessageDeadLetters', props.deadLetters.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: 'Maximum' })),
      ApiServerErrors: alarm('ApiServerErrors', serverErrorShare, 2),
    };

    const latency = (statistic: string) => props.api.metricLatency({ period: FIVE_MINUTES, statistic, label: `latency ${statistic}` });
    const drain = (statistic: string) => product('DrainDuration', { outcome: 'drained' }, statistic, `drain ${statistic}`);
    const systemErrors = Object.entries(props.tables).map(
      ([name, table]) => new Metric({ namespace: 'AWS/DynamoDB', metricName: 'SystemErrors', dimensionsMap: { TableName: table.tableName }, statistic: 'Sum', period: FIVE_MINUTES, label: `${name} system errors` }),
    );
    const executions = (label: string, m: (o: { period: Duration; label: string }) => Metric) => m({ period: FIVE_MINUTES, label });
    const width = 8;
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `agents-${props.stage}`,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new TextWidget({
            markdown: `# Agents lifecycle (${props.stage})\nStops, drains and messages as the functions measure them (namespace ${METRICS_NAMESPACE}); each alarm's description says what to do.`,
            width: 24,
            height: 2,
          }),
        ],
        [
          new GraphWidget({ title: 'API latency (ms)', left: [latency('p50'), latency('p95'), latency('p99')], width }),
          new GraphWidget({ title: 'API requests and 5xx', left: [requests], right: [serverErrors, props.api.metricClientError({ period: FIVE_MINUTES, label: '4xx' })], width }),
          new SingleValueWidget({ title: 'Alarms\' inputs now', metrics: [timedOutShare, stuckStops, deadLetters], width }),
        ],
        [
          new GraphWidget({ title: 'Stops by outcome', left: Object.values(stopsBy), stacked: true, width }),
          new GraphWidget({ title: 'Drain duration (ms)', left: [drain('p50'), drain('p95')], right: [product('DeadlineToCommit', {}, 'p95', 'deadline to commit p95')], width }),
          new GraphWidget({ title: 'Messages by outcome', left: MESSAGE_OUTCOMES.map((o) => product('MessagesEnded', { outcome: o }, 'Sum', o)), stacked: true, width }),
        ],
        [
          new GraphWidget({
            title: 'Runtime latency p95 (ms) and failures',
            left: RUNTIMES.map((r) => product('RuntimeLatency', { runtime: r }, 'p95', `${r} p95`)),
            right: RUNTIMES.map((r) => product('RuntimeFailures', { runtime: r }, 'Sum', `${r} failures`)),
            width,
          }),
          new GraphWidget({
            title: 'Admissions refused, heartbeats lost, reaper heals, stop recoveries',
            left: [
              ...['AGENT_STOPPING', 'AGENT_NOT_RUNNING', 'TOO_MANY_IN_FLIGHT'].map((reason) => product('AdmissionsRefused', { reason }, 'Sum', reason)),
              product('HeartbeatsLost', {}, 'Sum', 'heartbeats lost'),
              stuckStops,
              product('ReaperHeals', { kind: 'fleet_stop' }, 'Sum', 'fleet stops resumed'),
              product('StopRecoveries', {}, 'Sum', 'stop workflows looking again after a failure'),
            ],
            width,
          }),
          new GraphWidget({ title: 'Table throttles and system errors', left: throttles, right: systemErrors, width }),
        ],
        [
          new GraphWidget({
            title: 'Stop workflow executions',
            left: [
              executions('started', (o) => props.stopWorkflow.metricStarted(o)),
              executions('succeeded', (o) => props.stopWorkflow.metricSucceeded(o)),
              executions('failed', (o) => props.stopWorkflow.metricFailed(o)),
            ],
            width,
          }),
          new GraphWidget({
            title: 'Fleet stops',
            left: [product('FleetStopsEnded', { status: 'completed' }, 'Sum', 'completed'), product('FleetStopsEnded', { status: 'failed' }, 'Sum', 'failed')],
            right: ['drained', 'timed_out', 'forced', 'failed', 'skipped'].map((state) => product('FleetStopAgents', { state }, 'Sum', `agents ${state}`)),
            width,
          }),
          new GraphWidget({ title: 'Dead-lettered jobs', left: [deadLetters], width }),
        ],
      ],
    });
  }
}
