import type { Config } from '../../agents/config.js';
import type { RuntimeRegistry } from '../../agents/ports.js';
import { echoRuntime } from './echo.js';
import { HttpRuntime } from './http.js';

/** The runtimes an agent can run on, by `runtime.type`: one file each in this folder. */
export const runtimesFor = (config: Pick<Config, 'runtimeUrls'>): RuntimeRegistry => ({
  echo: echoRuntime,
  http: new HttpRuntime({ urls: config.runtimeUrls }),
});
