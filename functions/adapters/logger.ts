import { Logger } from '@aws-lambda-powertools/logger';

/** JSON logs (Powertools), one logger for every function; POWERTOOLS_LOG_LEVEL sets the level. */
export const logger = new Logger({ serviceName: 'agents' });

/**
 * In Lambda, wire a module's dependencies when it loads: a configuration error is a failed cold
 * start with one clear log line, not a 500 (or a request let in) on every invocation. Outside
 * Lambda (the local stack, tests) nothing happens here; they wire explicitly.
 */
export function wireAtColdStart(what: string, wire: () => unknown): void {
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return;
  try {
    wire();
  } catch (err) {
    logger.error(`configuration error: this function cannot ${what}`, { error: err as Error });
    throw err;
  }
}
