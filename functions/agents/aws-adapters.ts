import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { EventPublisher, LifecycleEvent, StopWorkflow, StopWorkflowInput } from './ports.js';

export const EVENT_SOURCE = 'agents.lifecycle';

/** Step Functions: one Standard execution per stop, named by stopId (the name makes it idempotent). */
export class StepFunctionsStopWorkflow implements StopWorkflow {
  constructor(
    private readonly stateMachineArn: string,
    private readonly client = new SFNClient({}),
  ) {}

  async start(input: StopWorkflowInput): Promise<void> {
    try {
      await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: input.stopId, input: JSON.stringify(input) }),
      );
    } catch (err) {
      // Same name, same input: this stop's execution exists already (a joined or repeated stop).
      if (err instanceof ExecutionAlreadyExists) return;
      throw err;
    }
  }
}

export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly eventBusName: string,
    private readonly client = new EventBridgeClient({}),
  ) {}

  async publish(event: LifecycleEvent): Promise<void> {
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
