import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { functionAccess } from '../functions/adapters/dynamodb/grants.js';

/**
 * The state machine definitions, one ASL file each: CDK substitutes `${Name}` with function ARNs,
 * the local interpreter maps the same names to the handlers. Each task names the handler file
 * under functions/workflow/ its Lambda runs, the states that invoke it, and the declaration its
 * function's table grants come from (functionAccess: granted by CDK, enforced locally).
 */
export interface WorkflowDefinition {
  /** The ASL file. */
  asl: string;
  tasks: Record<string, { handler: string; states: readonly string[]; function: string; grants: keyof typeof functionAccess }>;
}

export const stopWorkflow = {
  asl: fileURLToPath(new URL('./stop-workflow.asl.json', import.meta.url)),
  tasks: {
    CheckDrainFunctionArn: { handler: 'check-drain', states: ['CheckDrain'], function: 'CheckDrainTask', grants: 'CheckDrain' },
    FinalizeStopFunctionArn: { handler: 'finalize-stop', states: ['Finalize'], function: 'FinalizeTask', grants: 'FinalizeStop' },
    RecordStopFailureFunctionArn: { handler: 'record-stop-failure', states: ['RecordFailure'], function: 'RecordFailureTask', grants: 'RecordStopFailure' },
  },
} as const satisfies WorkflowDefinition;

export const fleetStopWorkflow = {
  asl: fileURLToPath(new URL('./fleet-stop-workflow.asl.json', import.meta.url)),
  tasks: {
    FleetStopStepFunctionArn: { handler: 'fleet-stop-step', states: ['Advance', 'RecordFailure'], function: 'FleetStopTask', grants: 'FleetStopStep' },
  },
} as const satisfies WorkflowDefinition;

/** The drain workflow's file (kept for the tests that read it). */
export const STOP_WORKFLOW_ASL = stopWorkflow.asl;

export type WorkflowSubstitution = keyof typeof stopWorkflow.tasks;

/** The definition with `${Name}` replaced, as Step Functions' definitionSubstitutions does. */
export function renderDefinition(workflow: WorkflowDefinition, substitutions: Record<string, string>): Record<string, unknown> {
  const text = readFileSync(workflow.asl, 'utf8').replace(/\$\{(\w+)\}/g, (whole, name: string) => {
    const value = substitutions[name];
    if (value === undefined) throw new Error(`No substitution for ${whole} in ${workflow.asl}`);
    return value;
  });
  return JSON.parse(text) as Record<string, unknown>;
}
