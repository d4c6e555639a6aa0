import { Logger } from '@aws-lambda-powertools/logger';

/** JSON logs (Powertools), one logger for every function; POWERTOOLS_LOG_LEVEL sets the level. */
export const logger = new Logger({ serviceName: 'agents' });
