/**
 * Models on demand: a model or int8 variant that is not prepared yet is prepared the first time a job needs it,
 * so a first start converts only the default model. Each preparation runs as a child process
 * (`enhancer models NAME`): calibrating x4plus int8 in the service's own process left it holding 4.9 GB for the
 * rest of its life, where the same job after a plain start held 0.8 GB. Jobs that want the same unit at once
 * share one preparation; a failed one is forgotten, so the next job that needs it tries again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EnhanceError } from '../errors.js';
import { DEFAULT_LOCALE, say, type Text } from '../i18n/i18n.js';
import { silentLogger, type Logger } from '../log.js';
import { projectRoot } from '../paths.js';
import { readManifest, sha256File } from './manifest.js';
import { ALL_UNITS, BUILT_IN, preparationTime, unitName, type ModelUnit } from './prepare.js';

/** The name a person reads: `anime`, `x4plus int8`. */
const label = (unit: ModelUnit) => (unit.precision === 'int8' ? `${unit.model} int8` : unit.model);

/**
 * The one line a person waiting for `unit` is told.
 *
 * @example preparingLine({ model: 'anime', precision: 'fp32' }); // 'preparing the anime model, about a minute, once'
 */
export function preparingLine(unit: ModelUnit): string {
  return say(DEFAULT_LOCALE, preparingText(unit));
}

/** `preparingLine` as a catalogue message, to say in the waiting person's language. */
export function preparingText(unit: ModelUnit): Text {
  return { key: 'prepare.line', values: { model: label(unit), time: preparationTime(unit) } };
}

/** Estimated milliseconds a preparation of `unit` takes (for the ETA shown while it runs). */
export function preparationMs(unit: ModelUnit): number {
  const model = BUILT_IN.find((m) => m.name === unit.model);
  return ((unit.precision === 'int8' ? model?.seconds.int8 : model?.seconds.fp32) ?? 60) * 1000;
}

export interface ModelPreparerOptions {
  /** The models folder with its manifest. */
  dir: string;
  logger?: Logger;
  /** Environment of the child (default this process's): the npm registry it fetches from, say. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Prepares models when jobs first need them, each in a child process, each unit once at a time.
 *
 * @example
 * const preparer = new ModelPreparer({ dir: config.models, logger });
 * await preparer.ensure({ model: 'anime', precision: 'fp32' }, (text) => tell(text), signal);
 */
export class ModelPreparer {
  private readonly log: Logger;
  /** Preparations under way, by unit name. */
  private readonly running = new Map<string, Promise<void>>();
  private readonly children = new Set<ChildProcess>();
  /** Files whose checksum matched, by path, with the size, time and inode they had: a job's check costs a stat. */
  private readonly verified = new Map<string, string>();
  private closed = false;

  constructor(private readonly options: ModelPreparerOptions) {
    this.log = options.logger ?? silentLogger;
  }

  /**
   * Resolves once `unit` is prepared (at once when it already is). When it is not, `tell` hears the line for the
   * person first, and the job waits for the one preparation of that unit; a failure rejects with its one-line
   * reason. `signal` stops this job's wait (the preparation goes on for the others). Models this project does not
   * build (a user's own ONNX in the manifest) resolve at once: loading them says what is wrong.
   */
  async ensure(unit: ModelUnit, tell: (text: Text) => void = () => {}, signal?: AbortSignal): Promise<void> {
    if (!ALL_UNITS.some((u) => unitName(u) === unitName(unit))) return;
    if (await this.ready(unit)) return;
    if (this.closed) throw new EnhanceError({ key: 'reason.modelStopping' }, 'limit');
    const name = unitName(unit);
    let run = this.running.get(name);
    if (!run) {
      run = this.prepare(unit).finally(() => this.running.delete(name));
      this.running.set(name, run);
    }
    tell(preparingText(unit));
    if (!signal) return run;
    signal.throwIfAborted();
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([run, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Stops every preparation under way (the service is stopping): their jobs run again at the next start. */
  close(): void {
    this.closed = true;
    for (const child of this.children) child.kill('SIGTERM');
  }

  /** Is the unit's file there with the manifest's checksum? */
  private async ready(unit: ModelUnit): Promise<boolean> {
    const entry = (await readManifest(this.options.dir)).models.find((m) => m.name === unit.model);
    const variant = unit.precision === 'int8' ? entry?.int8 : entry;
    if (!variant) return false;
    const file = path.join(this.options.dir, variant.file);
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat) return false;
    const stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}:${variant.sha256}`;
    if (this.verified.get(file) === stamp) return true;
    if ((await sha256File(file).catch(() => '')) !== variant.sha256) return false;
    this.verified.set(file, stamp);
    return true;
  }

  private async prepare(unit: ModelUnit): Promise<void> {
    const name = unitName(unit);
    const started = Date.now();
    this.log.info({ model: name }, `${preparingLine(unit)}: running \`enhancer models ${name}\``);
    const lines = await this.runChild(name);
    if (lines.code !== 0 || !(await this.ready(unit))) {
      // The CLI's last line is `error: <reason>`; a child that was killed or crashed has none.
      const reason = lines.error ?? (lines.code === 0 ? 'the prepared file does not match the manifest' : `enhancer models ${name} exited with ${lines.code}`);
      this.log.warn({ model: name, reason }, 'model preparation failed; the next job that needs it tries again');
      throw new EnhanceError({ key: 'reason.modelFailed', values: { model: label(unit), reason } }, 'model');
    }
    this.log.info({ model: name, ms: Date.now() - started }, `prepared the ${label(unit)} model`);
  }

  private runChild(name: string): Promise<{ code: number | string; error?: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'enhancer.js'), 'models', name, '--dir', this.options.dir], {
        // Inherited unless a test gives its own.
        env: this.options.env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      this.children.add(child);
      let error: string | undefined;
      let rest = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith('error: ')) error = line.slice('error: '.length);
          else if (line.trim()) this.log.info({ model: name }, line);
        }
      });
      const done = (code: number | string) => {
        this.children.delete(child);
        resolve({ code, error });
      };
      child.on('error', (e) => done(e.message));
      child.on('close', (code, signal) => done(code ?? signal ?? 'an unknown end'));
    });
  }
}
