import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The one state machine definition: CDK substitutes these with function ARNs, locally with task names. */
export const STOP_WORKFLOW_ASL = fileURLToPath(new URL('./stop-workflow.asl.json', import.meta.url));

/** Substitution name -> the workflow task handler file under functions/workflow/ (and its state). */
export const workflowTasks = {
  CheckDrainFunctionArn: { handler: 'check-drain', state: 'CheckDrain' },
  FinalizeStopFunctionArn: { handler: 'finalize-stop', state: 'Finalize' },
  RecordStopFailureFunctionArn: { handler: 'record-stop-failure', state: 'RecordFailure' },
} as const;

export type WorkflowSubstitution = keyof typeof workflowTasks;

/** The definition with `${Name}` replaced, as Step Functions' definitionSubstitutions does. */
export function renderDefinition(substitutions: Record<WorkflowSubstitution, string>): Record<string, unknown> {
  const text = readFileSync(STOP_WORKFLOW_ASL, 'utf8').replace(/\$\{(\w+)\}/g, (whole, name: string) => {
    const value = substitutions[name as WorkflowSubstitution];
    if (value === undefined) throw new Error(`No substitution for ${whole} in ${STOP_WORKFLOW_ASL}`);
    return value;
  });
  return JSON.parse(text) as Record<string, unknown>;
}
