/**
 * The service as a person runs it: `node bin/enhancer.js serve` (or `npm start`) in a child process, with its own
 * inbox, outbox and data folders, its log lines read back as JSON.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MALLOC_ENV } from '../src/malloc.js';
import { projectRoot } from '../src/paths.js';
import { Changes } from './changes.js';

export interface LogLine {
  level: number;
  msg: string;
  job?: string;
  state?: string;
  name?: string;
  [key: string]: unknown;
}

/**
 * How the service is started: `direct` runs bin/enhancer.js with the malloc settings up front, so the launcher
 * does not re-exec and a kill reaches the service itself; `launcher` runs it without them, so the launcher
 * re-execs and the service is its child; `npm` runs `npm start` in the project folder (npm, then the launcher,
 * then the service).
 */
export type Launch = 'direct' | 'launcher' | 'npm';

export class ServiceProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once every process holding its stderr has exited (the launcher's and npm's children too). */
  readonly closed: Promise<void>;
  private readonly child: ChildProcess;
  private readonly changes = new Changes();

  /** `serveArgs` go after `serve` (e.g. `--role worker`). */
  constructor(readonly dir: string, env: Record<string, string> = {}, launch: Launch = 'direct', serveArgs: readonly string[] = []) {
    const inherited = { ...process.env };
    // LOG_FORMAT left to its default, which must be JSON lines on a pipe; the malloc settings only for `direct`.
    // A developer's own bot tokens and settings stay out: a test turns on only the doors it means to.
    const own = Object.keys(inherited).filter((key) => /^(TELEGRAM|DISCORD|ENHANCER)_/.test(key));
    for (const key of ['LOG_FORMAT', ...Object.keys(MALLOC_ENV), ...own]) delete inherited[key];
    const [command, args]: [string, string[]] = launch === 'npm' ? ['npm', ['start']] : [process.execPath, [path.join(projectRoot, 'bin', 'enhancer.js'), 'serve', ...serveArgs]];
    this.child = spawn(command, args, {
      cwd: launch === 'npm' ? projectRoot : dir,
      env: {
        ...inherited,
        ...(launch === 'direct' ? MALLOC_ENV : {}),
        ENHANCER_INBOX: path.join(dir, 'inbox'),
        ENHANCER_OUTBOX: path.join(dir, 'outbox'),
        ENHANCER_DATA: path.join(dir, 'data'),
        ENHANCER_MODEL: 'x4fast',
        LOG_LEVEL: 'info',
        // The web door is on by default at 8080; tests run side by side, so only those that mean to turn it on.
        ENHANCER_WEB_PORT: '0',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let rest = '';
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.stderr.push(line);
        }
      }
      this.changes.notify();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    this.closed = new Promise((resolve) => this.child.stderr!.on('close', () => resolve()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Log lines with this message. */
  lines(msg: string): LogLine[] {
    return this.logs.filter((l) => l.msg === msg);
  }

  /** Resolves once `test` holds for the log so far; fails after `timeoutMs` or if the service exits. */
  async until(test: (logs: LogLine[]) => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    await this.changes.until(() => test(this.logs), {
      what: () => `${what}; last lines: ${JSON.stringify(this.logs.slice(-5))}`,
      timeoutMs,
      pollMs: 200,
      fail: () => (this.running ? undefined : `service exited while waiting for ${what}; stderr: ${this.stderr.join(' | ')}`),
    });
  }

  /** Waits for `n` log lines with message `msg`. */
  count(msg: string, n: number, timeoutMs?: number): Promise<void> {
    return this.until((logs) => logs.filter((l) => l.msg === msg).length >= n, `${n} x "${msg}"`, timeoutMs);
  }

  started(): Promise<void> {
    return this.count('service started', 1);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}

/** Writes a config file and returns the environment that points the service at it. */
export function withConfig(dir: string, config: object): Record<string, string> {
  const file = path.join(dir, 'enhancer.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return { ENHANCER_CONFIG: file };
}

/** Files in a folder, sorted, without hidden ones. */
export function listing(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
}
