import {
  WorkflowEnded,
  fleetExecutionName,
  type EventPublisher,
  type FleetWorkflow,
  type FleetWorkflowInput,
  type LifecycleEvent,
  type CloseJob,
  type MessageJob,
  type MessageQueue,
  type StopWorkflow,
  type StopWorkflowInput,
} from '../agents/ports.js';
import { tracedClient } from './tracing.js';

export const EVENT_SOURCE = 'agents.lifecycle';

// The SDK clients are imported on first use, so functions that never start a workflow or publish
// an event (most of them) do not pay for loading them at cold start.
const sfn = async () => import('@aws-sdk/client-sfn');
const eventBridge = async () => import('@aws-sdk/client-eventbridge');
const sqs = async () => import('@aws-sdk/client-sqs');

/**
 * Step Functions: one Standard execution per stop (named by stopId) or per fleet stop (named by
 * operationId); the name makes starting it idempotent while it runs.
 */
class StepFunctionsWorkflow<I extends object> {
  private client?: import('@aws-sdk/client-sfn').SFNClient;

  constructor(
    private readonly stateMachineArn: string,
    private readonly nameOf: (input: I) => string,
  ) {}

  async start(input: I): Promise<void> {
    const { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } = await sfn();
    this.client ??= tracedClient(new SFNClient({}));
    try {
      await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: this.nameOf(input), input: JSON.stringify(input) }),
      );
    } catch (err) {
      // A running execution of the same name and input is joined (StartExecution succeeds); this
      // error means one of that name has closed (or ran with another input, which never happens:
      // the input is the name's own ids).
      if (err instanceof ExecutionAlreadyExists) throw new WorkflowEnded(this.nameOf(input));
      throw err;
    }
  }
}

export const stepFunctionsStopWorkflow = (arn: string): StopWorkflow => new StepFunctionsWorkflow<StopWorkflowInput>(arn, (i) => i.stopId);
export const stepFunctionsFleetWorkflow = (arn: string): FleetWorkflow => new StepFunctionsWorkflow<FleetWorkflowInput>(arn, fleetExecutionName);

export class EventBridgePublisher implements EventPublisher {
  private client?: import('@aws-sdk/client-eventbridge').EventBridgeClient;

  constructor(private readonly eventBusName: string) {}

  async publish(event: LifecycleEvent): Promise<void> {
    const { EventBridgeClient, PutEventsCommand } = await eventBridge();
    this.client ??= tracedClient(new EventBridgeClient({}));
    const out = await this.client.send(
      new PutEventsCommand({
        Entries: [{ EventBusName: this.eventBusName, Source: EVENT_SOURCE, DetailType: event.type, Detail: JSON.stringify(event.detail) }],
      }),
    );
    if (out.FailedEntryCount) {
      throw new Error(`EventBridge rejected ${event.type}: ${out.Entries?.[0]?.ErrorCode ?? 'unknown error'}`);
    }
  }
}

/** SQS: the durable hand-off to the message worker (a Lambda event source mapping, batch size 1). */
export class SqsMessageQueue implements MessageQueue {
  private client?: import('@aws-sdk/client-sqs').SQSClient;

  constructor(private readonly queueUrl: string) {}

  async send(job: MessageJob | CloseJob): Promise<void> {
    const { SQSClient, SendMessageCommand } = await sqs();
    this.client ??= tracedClient(new SQSClient({}));
    await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(job) }));
  }
}
