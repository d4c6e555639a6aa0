import type { RuntimeRegistry } from '../../agents/ports.js';
import { echoRuntime } from './echo.js';

/** The runtimes an agent can run on, by `runtime.type`: one file each in this folder. */
export const defaultRuntimes: RuntimeRegistry = { echo: echoRuntime };
