/** Secondary ports: what the domain needs from the outside, with an AWS and a local adapter each. */

export interface StopWorkflowInput {
  agentId: string;
  stopId: string;
}

/** Starts the drain workflow of one stop. Idempotent per stopId: starting it twice runs it once. */
export interface StopWorkflow {
  start(input: StopWorkflowInput): Promise<void>;
}

export type LifecycleEventType = 'Agent Started' | 'Agent Stopping' | 'Agent Stopped';

export interface LifecycleEvent {
  type: LifecycleEventType;
  detail: {
    agentId: string;
    stopId?: string;
    outcome?: string;
    reason?: string;
    interrupted?: number;
  };
}

/** Publishes lifecycle events; runtimes listen for `Agent Stopped` to close their connections. */
export interface EventPublisher {
  publish(event: LifecycleEvent): Promise<void>;
}
