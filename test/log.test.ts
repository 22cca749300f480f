/**
 * The logger's two formats: readable lines on a terminal, JSON lines elsewhere, LOG_FORMAT to choose, and
 * secrets redacted in both.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, logFormat } from '../src/log.js';

/** Logs one line with a secret through a logger made with these settings and returns what was written. */
function written(env: NodeJS.ProcessEnv, isTTY: boolean): string {
  const lines: string[] = [];
  const log = createLogger('info', { env, isTTY, destination: { write: (line: string) => void lines.push(line) } });
  log.info({ job: 'j1', token: 'abc123', options: { password: 'hunter2' } }, 'job queued');
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('logger', () => {
  it('writes readable lines to a terminal, secrets redacted', () => {
    const line = written({}, true);
    expect(() => JSON.parse(line)).toThrow();
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*: .*job queued/);
    expect(line).toContain('[redacted]');
    expect(line).not.toContain('abc123');
    expect(line).not.toContain('hunter2');
    expect(line.trimEnd().split('\n')).toHaveLength(1);
    expect(line).toContain('\x1b['); // coloured on a terminal
    expect(written({ NO_COLOR: '1' }, true)).not.toContain('\x1b[');
  });

  it('writes JSON lines elsewhere, secrets redacted', () => {
    const parsed = JSON.parse(written({}, false));
    expect(parsed).toMatchObject({ level: 30, msg: 'job queued', job: 'j1', token: '[redacted]', options: { password: '[redacted]' } });
  });

  it('takes LOG_FORMAT over the guess, and refuses anything else with one line', () => {
    expect(() => JSON.parse(written({ LOG_FORMAT: 'json' }, true))).not.toThrow();
    const pretty = written({ LOG_FORMAT: 'pretty' }, false);
    expect(pretty).toContain('job queued');
    expect(pretty).not.toContain('\x1b['); // not a terminal: no colours
    expect(logFormat({ LOG_FORMAT: '' }, false)).toBe('json');
    expect(() => logFormat({ LOG_FORMAT: 'yaml' }, true)).toThrow('LOG_FORMAT must be json or pretty (got "yaml" from the environment)');
  });
});
