import { expect, it } from 'vitest';
import { prettyLine } from '../../local/log.js';

it('LOG_FORMAT=pretty shows a JSON log line as one readable line, and leaves anything else as it is', () => {
  const line = JSON.stringify({
    level: 'INFO',
    message: 'agent stopped',
    timestamp: '2026-12-02T18:50:30.930Z',
    service: 'agents',
    cold_start: false,
    function_name: 'StopAgent',
    function_request_id: 'b9e4',
    sampling_rate: 0,
    correlation_id: '3df9817f-140c-4109-af4a-33124a185b88',
    agentId: 'a1',
    outcome: 'drained',
    counts: { drained: 1 },
  });
  expect(prettyLine(line)).toBe('18:50:30.930 INFO  [StopAgent 3df9817f] agent stopped agentId=a1 outcome=drained counts={"drained":1}');
  expect(prettyLine('{"_aws":{}}')).toBe('{"_aws":{}}');
  expect(prettyLine('not json')).toBe('not json');
});
