import { StateMachine } from 'aws-local-stepfunctions';
import type { Context } from 'aws-lambda';
import { invokeLocally } from './invoke.js';
import { WorkflowEnded, fleetExecutionName, type Deps, type FleetWorkflow, type FleetWorkflowInput, type StopWorkflow, type StopWorkflowInput } from '../functions/agents/ports.js';
import { handler as checkDrain } from '../functions/workflow/check-drain.js';
import { handler as finalizeStop } from '../functions/workflow/finalize-stop.js';
import { handler as fleetStopStep } from '../functions/workflow/fleet-stop-step.js';
import { handler as recordStopFailure } from '../functions/workflow/record-stop-failure.js';
import { fleetStopWorkflow, renderDefinition, stopWorkflow, type WorkflowDefinition, type WorkflowSubstitution } from '../infra/workflow-definition.js';

/** One entry of an execution's event log (the library does not export its type). */
export type EventLog = { type: string; timestamp: number; state?: { name: string } };

type TaskHandler = (input: never, context: Context) => Promise<unknown>;

/** A task's time locally (a fleet step works for its invocation's time less 10 s). */
const LOCAL_TASK_TIMEOUT_MS = 30_000;

export const taskHandlers: Record<WorkflowSubstitution, TaskHandler> = {
  CheckDrainFunctionArn: checkDrain,
  FinalizeStopFunctionArn: finalizeStop,
  RecordStopFailureFunctionArn: recordStopFailure,
};
const fleetTaskHandlers: Record<keyof typeof fleetStopWorkflow.tasks, TaskHandler> = {
  FleetStopStepFunctionArn: fleetStopStep,
};

/** The deployed definition, its Resource ARNs substituted with local placeholders. */
export function localDefinition(workflow: WorkflowDefinition = stopWorkflow): Record<string, unknown> {
  const subs = Object.fromEntries(
    Object.entries(workflow.tasks).map(([sub, { handler }]) => [sub, `arn:aws:lambda:us-east-1:000000000000:function:${handler}`]),
  );
  return renderDefinition(workflow, subs);
}

export interface LocalWorkflowOptions {
  /** Task state name -> handler (defaults: the real workflow handlers). Tests inject faults here. */
  handlers?: Partial<Record<string, (input: unknown, context: Context) => Promise<unknown>>>;
  waitTimeOverrides?: Record<string, number>;
  retryIntervalOverrides?: Record<string, number>;
  /** Called with every execution's event log entries (state transitions), for benchmarks. */
  onEvent?: (executionName: string, event: EventLog) => void;
  log?: Deps['log'];
  /** Each task function's own dependencies (its grants), by the name it is declared under (functionAccess). */
  depsFor?: (task: string) => Deps;
}

/**
 * Runs the very ASL file CDK deploys, through aws-local-stepfunctions, its tasks mapped to the same
 * handlers the Lambda functions run. One execution per name (stopId, operationId), as Step
 * Functions' execution names: starting a running one joins it, starting one that ended is refused.
 */
class LocalWorkflow<I extends object> {
  private readonly machine: StateMachine;
  private readonly running = new Map<string, { input: string; abort: () => void; done: Promise<unknown> }>();
  private readonly started = new Set<string>();
  constructor(
    private readonly workflow: WorkflowDefinition,
    private readonly defaults: Record<string, TaskHandler>,
    private readonly nameOf: (input: I) => string,
    private readonly options: LocalWorkflowOptions = {},
  ) {
    this.machine = new StateMachine(localDefinition(workflow) as never);
  }

  async start(input: I): Promise<void> {
    const name = this.nameOf(input);
    // As Step Functions: a running execution of this name is joined if the input is the same (and
    // refused with the error a closed one gets if not); a closed one's name is spent.
    const running = this.running.get(name);
    if (running && running.input === JSON.stringify(input)) return;
    if (running) throw new WorkflowEnded(name);
    if (this.started.has(name)) throw new WorkflowEnded(name);
    this.started.add(name);
    // Task state -> the handler its Lambda runs (or a test's stand-in for that state, as set now).
    const handlers = Object.fromEntries(
      Object.entries(this.workflow.tasks).flatMap(([sub, { states, grants, function: functionName }]) =>
        states.map((state) => {
          const run = (this.options.handlers?.[state] ?? this.defaults[sub]) as (input: unknown, context: Context) => Promise<never>;
          const { depsFor } = this.options;
          return [
            state,
            (taskInput: unknown) =>
              invokeLocally(functionName, { deps: depsFor?.(grants), timeoutMs: LOCAL_TASK_TIMEOUT_MS }, (context) => run(taskInput, context)),
          ];
        }),
      ),
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
        this.options.log?.warn('workflow failed', { ...input, error: err });
        return { failed: err.message };
      })
      .finally(() => this.running.delete(name));
    this.running.set(name, { input: JSON.stringify(input), abort: execution.abort, done });
    if (this.options.onEvent) {
      const onEvent = this.options.onEvent;
      void (async () => {
        for await (const event of execution.eventLogs) onEvent(name, event as EventLog);
      })();
    }
  }

  /** Wait for an execution to end (tests). */
  async settled(name: string): Promise<unknown> {
    return this.running.get(name)?.done;
  }

  /** Whether the execution of this name is still running. */
  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  /** Abort every execution (shutdown). What they govern stays as it is; a restart resumes them. */
  async close(): Promise<void> {
    const all = [...this.running.values()];
    all.forEach((e) => e.abort());
    await Promise.all(all.map((e) => e.done));
  }
}

/** The drain workflow of one stop (stop-workflow.asl.json), named by stopId. */
export class LocalStopWorkflow extends LocalWorkflow<StopWorkflowInput> implements StopWorkflow {
  constructor(options: LocalWorkflowOptions = {}) {
    super(stopWorkflow, taskHandlers, (i) => i.stopId, options);
  }
}

/** The workflow of one fleet stop (fleet-stop-workflow.asl.json), named by operationId. */
export class LocalFleetWorkflow extends LocalWorkflow<FleetWorkflowInput> implements FleetWorkflow {
  constructor(options: LocalWorkflowOptions = {}) {
    super(fleetStopWorkflow, fleetTaskHandlers, fleetExecutionName, options);
  }
}
