/**
 * The logger's two formats: readable lines on a terminal, JSON lines elsewhere, LOG_FORMAT to choose, and
 * secrets redacted in both. The settings come from the config loader, which reads the environment.
 */
import { describe, expect, it } from 'vitest';
import { cliSettings, ConfigError, loadConfig } from '../src/config.js';
import { createLogger, logFormat } from '../src/log.js';

/** Logs one line with a secret through a logger made with the settings these variables give, and returns it. */
function written(env: NodeJS.ProcessEnv, isTTY: boolean): string {
  const lines: string[] = [];
  const { logFormat: format, logColour: colour } = cliSettings(env);
  const log = createLogger({ level: 'info', format, colour, isTTY, destination: { write: (line: string) => void lines.push(line) } });
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
    expect(logFormat(cliSettings({ LOG_FORMAT: '' }).logFormat, false)).toBe('json');
    expect(() => loadConfig({ env: { LOG_FORMAT: 'yaml' } })).toThrow(ConfigError);
    expect(() => cliSettings({ LOG_FORMAT: 'yaml' })).toThrow('config: logFormat must be one of auto, json, pretty (got "yaml" from $LOG_FORMAT)');
  });
});
