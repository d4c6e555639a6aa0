import { StateMachine } from 'aws-local-stepfunctions';
import type { Deps, StopWorkflow, StopWorkflowInput } from '../functions/agents/ports.js';
import { handler as checkDrain } from '../functions/workflow/check-drain.js';
import { handler as finalizeStop } from '../functions/workflow/finalize-stop.js';
import { handler as recordStopFailure } from '../functions/workflow/record-stop-failure.js';
import { renderDefinition, workflowTasks, type WorkflowSubstitution } from '../infra/workflow-definition.js';

/** One entry of an execution's event log (the library does not export its type). */
export type EventLog = { type: string; timestamp: number; state?: { name: string } };

type TaskHandler = (input: never) => Promise<unknown>;

export const taskHandlers: Record<WorkflowSubstitution, TaskHandler> = {
  CheckDrainFunctionArn: checkDrain,
  FinalizeStopFunctionArn: finalizeStop,
  RecordStopFailureFunctionArn: recordStopFailure,
};

/** The deployed definition, its Resource ARNs substituted with local placeholders. */
export function localDefinition(): Record<string, unknown> {
  const subs = Object.fromEntries(
    Object.entries(workflowTasks).map(([sub, { handler }]) => [sub, `arn:aws:lambda:us-east-1:000000000000:function:${handler}`]),
  ) as Record<WorkflowSubstitution, string>;
  return renderDefinition(subs);
}

export interface LocalWorkflowOptions {
  /** Task state name -> handler (defaults: the real workflow handlers). Tests inject faults here. */
  handlers?: Partial<Record<string, (input: unknown) => Promise<unknown>>>;
  waitTimeOverrides?: Record<string, number>;
  retryIntervalOverrides?: Record<string, number>;
  /** Called with every execution's event log entries (state transitions), for benchmarks. */
  onEvent?: (stopId: string, event: EventLog) => void;
  log?: Deps['log'];
}

/**
 * Runs the very ASL file CDK deploys, through aws-local-stepfunctions, its tasks mapped to the same
 * handlers the Lambda functions run. One execution per stopId, like Step Functions' execution name.
 */
export class LocalStopWorkflow implements StopWorkflow {
  private readonly machine = new StateMachine(localDefinition() as never);
  private readonly running = new Map<string, { abort: () => void; done: Promise<unknown> }>();
  private readonly started = new Set<string>();

  constructor(private readonly options: LocalWorkflowOptions = {}) {}

  async start(input: StopWorkflowInput): Promise<void> {
    if (this.started.has(input.stopId)) return;
    this.started.add(input.stopId);
    // Task state -> the handler its Lambda runs (or a test's stand-in for that state).
    const handlers = Object.fromEntries(
      (Object.keys(workflowTasks) as WorkflowSubstitution[]).map((sub) => {
        const { state } = workflowTasks[sub];
        return [state, (this.options.handlers?.[state] ?? taskHandlers[sub]) as (input: unknown) => Promise<never>];
      }),
    );
    const execution = this.machine.run(input as never, {
      overrides: {
        taskResourceLocalHandlers: handlers,
        waitTimeOverrides: this.options.waitTimeOverrides,
        retryIntervalOverrides: this.options.retryIntervalOverrides,
      },
      noThrowOnAbort: true,
    });
    const done = execution.result
      .catch((err: Error) => {
        this.options.log?.warn('stop workflow failed', { ...input, error: err });
        return { failed: err.message };
      })
      .finally(() => this.running.delete(input.stopId));
    this.running.set(input.stopId, { abort: execution.abort, done });
    if (this.options.onEvent) {
      const onEvent = this.options.onEvent;
      void (async () => {
        for await (const event of execution.eventLogs) onEvent(input.stopId, event as EventLog);
      })();
    }
  }

  /** Wait for an execution to end (tests). */
  async settled(stopId: string): Promise<unknown> {
    return this.running.get(stopId)?.done;
  }

  /** Whether the execution of this stop is still running. */
  isRunning(stopId: string): boolean {
    return this.running.has(stopId);
  }

  /** Abort every execution (shutdown). The agents stay `stopping`; a restart resumes their workflows. */
  async close(): Promise<void> {
    const all = [...this.running.values()];
    all.forEach((e) => e.abort());
    await Promise.all(all.map((e) => e.done));
  }
}
