import type { Config } from '../../agents/config.js';
import type { ModelKeys, RuntimeRegistry } from '../../agents/ports.js';
import { A2ARuntime } from './a2a.js';
import { echoRuntime } from './echo.js';
import { HttpRuntime } from './http.js';
import { LlmRuntime } from './llm.js';
import { A2A_TOKENS, BoundModelKeys } from './model-keys.js';
import type { RecordsStore } from '../dynamodb/records-store.js';

/** The runtimes an agent can run on, by `runtime.type`: one file each in this folder. */
export const runtimesFor = (
  config: Pick<Config, 'runtimeUrls' | 'runtimeAllowHttp'>,
  records: () => RecordsStore,
  keys: ModelKeys,
  a2aTokens: ModelKeys = new BoundModelKeys({ scheme: A2A_TOKENS }),
): RuntimeRegistry => ({
  echo: echoRuntime,
  http: new HttpRuntime({ urls: config.runtimeUrls, allowHttp: config.runtimeAllowHttp }),
  llm: new LlmRuntime({ urls: config.runtimeUrls, allowHttp: config.runtimeAllowHttp, records, keys }),
  a2a: new A2ARuntime({ urls: config.runtimeUrls, allowHttp: config.runtimeAllowHttp, records, tokens: a2aTokens }),
});
