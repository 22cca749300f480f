/**
 * The hot folder: images dropped into the inbox (or `inbox/<preset>/`, or `inbox/<format>/` such as
 * `inbox/webp/`) are enhanced, results appear in the outbox (`<name>.png`, or the format's extension), and the original moves to `inbox/done/` (or `inbox/failed/` with `<name>.error.txt` saying why).
 *
 * A file is taken once its size and modification time have held still for `settleMs`; files that settle
 * together are taken oldest first. Taking a file moves it to `inbox/.working/<preset>/<job id>` (its name goes
 * first into `<job id>.name` beside it) before it is queued, so a restart can neither lose it nor take it
 * twice: on start, a file there whose job the queue does not know is queued again under the same id. The id
 * alone is the working name because a name near the 255-byte limit has no room for a prefix.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Stats } from 'node:fs';
import { checkFileSize, formatExtension, OUTPUT_FORMATS, DEFAULT_LOCALE, DiskFullError, EnhanceError, JOB_ID, newJobId, OperatorError, plainText, reasonOf, reasonTextOf, say, SHARED_FILE, TEMP_NAME, writeAtomic, type EnhanceQueue, type JobOf, type Locale, type OutputFormat, type Logger, type Outcome, type Text } from '../../src/index.js';
import type { Door } from '../../src/index.js';
import type { Preset } from './config.js';
import { exists, freeStem, inside, isIgnoredName, safeStem } from './names.js';

export interface HotFolderOptions {
  /** The queue this door submits to and hears from. */
  queue: EnhanceQueue;
  inbox: string;
  outbox: string;
  /** Where the hot folder keeps its own small state (name reservations), e.g. `<data>/hotfolder`. */
  stateDir: string;
  /** `inbox/<name>/` runs with these options. */
  presets: Record<string, Preset>;
  /** The results' format where neither a preset nor a format folder says (`hotfolder.format`); default png. */
  format?: OutputFormat;
  /** Write the PDF summary (a preset may say otherwise). */
  pdf: boolean;
  settleMs: number;
  /** The language of the `.error.txt` reasons and of the PDFs (`hotfolder.locale`); the log stays English. */
  locale: Locale;
  /** Files larger than this are refused without being read. */
  maxFileBytes: number;
  logger: Logger;
}

/** What a hot-folder job carries in `request.replyTo`. */
type HotFolderReply = {
  adapter: 'hotfolder';
  /** The original, relative to the inbox, while the job runs. */
  working: string;
  name: string;
  preset: string;
};

/** The files a result is made of besides the image itself (`<stem>.png`, `.webp`, `.jpg` or `.avif`), by suffix. */
const OUTPUTS = [
  ['.preview.jpg', 'preview'],
  ['.compare.jpg', 'compare'],
  ['.pdf', 'pdf'],
] as const;
/** Every name a result may take: a stem is free only when none of them is there, whatever the format. */
const OUTPUT_SUFFIXES = [...OUTPUT_FORMATS.map(formatExtension), ...OUTPUTS.map(([suffix]) => suffix)];

/** `inbox/<format>/`: one folder per format, beside the presets (a preset of the same name wins). */
const FORMAT_FOLDERS: Record<string, Preset> = Object.fromEntries(OUTPUT_FORMATS.map((format) => [format, { format }]));
/** Beside a working file, the name it came with. */
const NAME_FILE = '.name';

const WORKING = '.working';
/** The `.working/` folder of files from the inbox itself (a preset name cannot start with `_`). */
const ROOT = '_';

interface Candidate {
  size: number;
  mtimeMs: number;
  /** When size and time were last seen to change. */
  since: number;
  /** When it arrived: creation time where the file system keeps it, else the first modification time seen. */
  arrived: number;
  /** When it was first found settled but held back for an earlier arrival. */
  heldSince?: number;
}

export class HotFolderDoor implements Door<HotFolderReply> {
  readonly name = 'hotfolder';
  readonly trusted = true;
  private readonly log: Logger;
  private watcher?: FSWatcher;
  private ticker?: NodeJS.Timeout;
  private readonly candidates = new Map<string, Candidate>();
  /** The check under way, so that stopping waits for a file being taken to be queued. */
  private ticking: Promise<void> | null = null;
  private readonly queue: EnhanceQueue;
  /** Serialises everything that picks names or moves files, so two steps never pick the same free name. */
  private serial: Promise<unknown> = Promise.resolve();
  private readonly warned = new Set<string>();
  /** Aborted on stop: files kept in `.working/` for want of disk space stop waiting (the next start takes them). */
  private readonly stopping = new AbortController();
  /** Files kept in `.working/` until there is room, each queued again then. */
  private readonly waiting = new Set<Promise<void>>();

  private readonly options: HotFolderOptions;

  constructor(options: HotFolderOptions) {
    this.queue = options.queue;
    this.options = { ...options, presets: { ...FORMAT_FOLDERS, ...options.presets } };
    this.log = options.logger.child({ adapter: 'hotfolder' });
  }

  private get done() {
    return path.join(this.options.inbox, 'done');
  }

  private get failed() {
    return path.join(this.options.inbox, 'failed');
  }

  async start(): Promise<void> {
    // The configured folders may be links (to a share, say); they are followed once, here.
    for (const key of ['inbox', 'outbox', 'stateDir'] as const) {
      const dir = this.options[key];
      await fs.mkdir(dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
        // Said plainly: "internal error: EEXIST … mkdir" was all a person saw when the outbox was a file.
        if (error.code === 'EEXIST') throw new OperatorError(`the hot folder's ${key} ${dir} is a file, not a folder`);
        throw error;
      });
      this.options[key] = await fs.realpath(dir);
    }
    const { inbox, outbox } = this.options;
    const working = path.join(inbox, WORKING);
    for (const dir of [this.done, this.failed, working, ...Object.keys(this.options.presets).map((p) => path.join(inbox, p))]) {
      await fs.mkdir(dir, { recursive: true });
      // A link put inside the inbox could send originals anywhere on the machine.
      if ((await fs.lstat(dir)).isSymbolicLink()) {
        throw new OperatorError(`${dir} is a symbolic link: the hot folder only writes into real folders`);
      }
    }
    await this.resumeWorking();
    await clearTemporaries([outbox, this.done, this.failed]);
    this.watcher = watch(inbox, {
      depth: 1,
      followSymlinks: false,
      ignoreInitial: false,
      alwaysStat: true,
      ignored: (file, stats) => this.ignored(file, stats),
    });
    this.watcher.on('add', (file, stats) => this.note(file, stats));
    this.watcher.on('change', (file, stats) => this.note(file, stats));
    this.watcher.on('error', (error) => this.log.error({ err: error }, 'watching the inbox failed'));
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    const every = Math.max(25, Math.min(250, this.options.settleMs / 4));
    this.ticker = setInterval(() => {
      this.ticking ??= this.tick().finally(() => (this.ticking = null));
    }, every);
    this.log.info({ inbox, outbox, presets: Object.keys(this.options.presets) }, 'watching the inbox');
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    this.stopping.abort();
    await this.ticking;
    await this.watcher?.close();
    await Promise.all([...this.waiting]);
    await this.serial;
  }

  private lock<T>(step: () => Promise<T>): Promise<T> {
    const run = this.serial.then(step, step);
    this.serial = run.catch(() => {});
    return run;
  }

  /** Which paths under the inbox are not ours to take. */
  private ignored(file: string, stats?: Stats): boolean {
    const rel = path.relative(this.options.inbox, file);
    if (rel === '') return false;
    const parts = rel.split(path.sep);
    if (parts.some(isIgnoredName) || parts.length > 2) return true;
    if (parts.length === 1) {
      if (parts[0] === 'done' || parts[0] === 'failed') return true;
      if (stats?.isDirectory() && !Object.hasOwn(this.options.presets, parts[0])) {
        this.warnOnce(parts[0], `inbox/${parts[0]}/ is not a preset folder and is left alone (presets: ${Object.keys(this.options.presets).join(', ')})`);
        return true;
      }
      return false;
    }
    return !Object.hasOwn(this.options.presets, parts[0]);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message);
  }

  private note(file: string, stats?: Stats): void {
    if (stats?.isDirectory()) return;
    const seen = this.candidates.get(file);
    const size = stats?.size ?? -1;
    const mtimeMs = stats?.mtimeMs ?? -1;
    const arrived = stats?.birthtimeMs || stats?.mtimeMs || Date.now();
    if (!seen) this.candidates.set(file, { size, mtimeMs, since: Date.now(), arrived });
    else if (seen.size !== size || seen.mtimeMs !== mtimeMs) Object.assign(seen, { size, mtimeMs, since: Date.now() });
  }

  /**
   * Checks every file not yet taken and takes, in arrival order, those that held still long enough. A settled
   * file waits for an earlier arrival that is still settling, but not for longer than `settleMs`, so one slow
   * upload cannot hold up the rest.
   */
  private async tick(): Promise<void> {
    // Intake is paused while the disk is full (the queue logged it once): files wait in the inbox, untouched.
    if (this.queue.disk?.full) return;
    try {
      const now = Date.now();
      const ready: Array<[string, Candidate]> = [];
      let firstUnsettled: [string, Candidate] | undefined;
      for (const [file, seen] of this.candidates) {
        const stats = await fs.lstat(file).catch(() => null);
        if (!stats) {
          this.candidates.delete(file);
          continue;
        }
        if (stats.size !== seen.size || stats.mtimeMs !== seen.mtimeMs) {
          Object.assign(seen, { size: stats.size, mtimeMs: stats.mtimeMs, since: now });
        }
        if (now - seen.since >= this.options.settleMs) ready.push([file, seen]);
        else if (!firstUnsettled || byArrival([file, seen], firstUnsettled) < 0) firstUnsettled = [file, seen];
      }
      ready.sort(byArrival);
      for (const [file, seen] of ready) {
        const later = firstUnsettled && byArrival([file, seen], firstUnsettled) > 0;
        if (later && now - (seen.heldSince ??= now) < this.options.settleMs) continue;
        this.candidates.delete(file);
        await this.take(file, seen);
      }
    } catch (error) {
      this.log.error({ err: error }, 'checking the inbox failed');
    }
  }

  /** Moves a settled file out of the way into `.working/` and queues it; whatever goes wrong, it gets an answer. */
  private async take(file: string, seen: Candidate): Promise<void> {
    const rel = path.relative(this.options.inbox, file).split(path.sep);
    const preset = rel.length === 2 ? rel[0] : '';
    const name = rel[rel.length - 1];
    const id = newJobId();
    const working = path.join(this.options.inbox, WORKING, preset || ROOT, id);
    try {
      await fs.mkdir(path.dirname(working), { recursive: true });
      // The name first: a crash between the two steps leaves a name file without a file, which start-up clears.
      await writeAtomic(working + NAME_FILE, name);
      await fs.rename(file, working);
    } catch (error) {
      await fs.rm(working + NAME_FILE, { force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.log.warn({ file: rel.join('/') }, 'the file went away before it could be taken; nothing to answer');
        return;
      }
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        // Left in the inbox, and taken once there is room.
        this.queue.disk?.report(error);
        this.candidates.set(file, seen);
        return;
      }
      this.log.error({ file: rel.join('/'), err: reasonOf(error) }, 'could not move the file into .working/');
      await this.moveToFailed(id, file, name, { key: 'hotfolder.cannotTake', values: { code: code ?? reasonTextOf(error) } }).catch((again: unknown) =>
        this.log.error({ file: rel.join('/'), err: reasonOf(again) }, 'could not move the file to failed/ either; it stays where it is'),
      );
      return;
    }
    this.log.info({ file: rel.join('/'), job: id }, 'taken from the inbox');
    await this.submit(working, id, preset, name);
  }

  /** Files left in `.working/` by a run that stopped: queue again those the queue does not know. */
  private async resumeWorking(): Promise<void> {
    const root = path.join(this.options.inbox, WORKING);
    for (const folder of await fs.readdir(root)) {
      const preset = folder === ROOT ? '' : folder;
      if (preset && !Object.hasOwn(this.options.presets, preset)) continue;
      const entries = await fs.readdir(path.join(root, folder));
      for (const entry of entries.sort()) {
        const id = entry.slice(0, 15);
        if (!JOB_ID.test(id)) continue;
        const file = path.join(root, folder, entry);
        let name: string;
        if (entry === id) {
          name = await fs.readFile(file + NAME_FILE, 'utf8').catch(() => id);
        } else if (entry === id + NAME_FILE) {
          // A name whose file never arrived: the move did not happen.
          if (!entries.includes(id)) await fs.rm(file, { force: true });
          continue;
        } else if (entry[15] === '-') {
          name = entry.slice(16); // As versions before the name file left it.
        } else continue;
        if (await this.queue.getJob(id)) continue;
        this.log.info({ job: id }, 'queueing again a file taken before the last stop');
        await this.submit(file, id, preset, name);
      }
    }
    // Reservations whose job no longer has a file in .working/ were delivered.
    for (const entry of await fs.readdir(this.options.stateDir)) {
      const id = entry.replace(/\.json$/, '');
      if (JOB_ID.test(id) && !(await this.findWorking(id))) await fs.rm(path.join(this.options.stateDir, entry), { force: true });
    }
  }

  private async findWorking(id: string): Promise<boolean> {
    const root = path.join(this.options.inbox, WORKING);
    for (const folder of await fs.readdir(root)) {
      if ((await fs.readdir(path.join(root, folder))).some((e) => e === id || e.startsWith(`${id}-`))) return true;
    }
    return false;
  }

  private async submit(working: string, id: string, preset: string, name: string): Promise<void> {
    try {
      const stats = await fs.lstat(working);
      if (stats.isSymbolicLink()) throw new EnhanceError({ key: 'hotfolder.symlink' }, 'input');
      if (!stats.isFile()) throw new EnhanceError({ key: 'hotfolder.notFile' }, 'input');
      checkFileSize(stats.size, this.options.maxFileBytes);
      const { report, ...chosen } = this.options.presets[preset] ?? {};
      const options = { format: this.options.format, ...chosen };
      const replyTo: HotFolderReply = { adapter: 'hotfolder', working: path.relative(this.options.inbox, working), name, preset };
      await this.queue.submit(
        { input: await fs.readFile(working), name, owner: 'hotfolder', replyTo, locale: this.options.locale, report: report ?? this.options.pdf, options },
        id,
      );
    } catch (error) {
      if (error instanceof DiskFullError) return this.later(working, id, preset, name);
      if (!(error instanceof EnhanceError)) this.log.error({ err: error, job: id }, 'queueing a file failed');
      await this.moveToFailed(id, working, name, reasonTextOf(error)).catch((again: unknown) => {
        if (!this.queue.disk?.report(again)) throw again;
        // Queued again once there is room; refused again then, it gets its reason then.
        this.later(working, id, preset, name);
      });
    }
  }

  /** A file that could not be queued for want of disk space stays in `.working/` and is queued once there is room. */
  private later(working: string, id: string, preset: string, name: string): void {
    const queue = this.queue;
    const room = queue.disk ? queue.disk.whenSpace(this.stopping.signal) : new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
    const again = room
      .then(
        () => (this.stopping.signal.aborted ? undefined : this.submit(working, id, preset, name)),
        () => undefined, // Stopped: the next start queues it from .working/.
      )
      .catch((error: unknown) => this.log.error({ job: id, err: reasonOf(error) }, 'queueing a file again failed; it stays in .working/ for the next start'));
    this.waiting.add(again);
    void again.finally(() => this.waiting.delete(again));
  }

  async deliver(job: JobOf<HotFolderReply>, outcome: Outcome): Promise<void> {
    const reply = job.request.replyTo;
    const working = inside(path.join(this.options.inbox, WORKING), path.relative(WORKING, reply.working));
    if (outcome.state === 'completed') await this.writeResults(job.id, working, reply.name, outcome);
    else await this.moveToFailed(job.id, working, reply.name, outcome.text ?? plainText(outcome.reason));
  }

  /** The original has gone to done/ or failed/: its name file goes too. */
  private async clearWorking(working: string): Promise<void> {
    await fs.rm(working + NAME_FILE, { force: true });
  }

  private reservation(id: string): string {
    return path.join(this.options.stateDir, `${id}.json`);
  }

  /** A reservation: names picked for a job, kept until its original has moved, so a retry reuses them. */
  private async reserve(id: string, pick: () => Promise<string>): Promise<string> {
    const file = this.reservation(id);
    try {
      return (JSON.parse(await fs.readFile(file, 'utf8')) as { stem: string }).stem;
    } catch {
      const stem = await pick();
      await writeAtomic(file, JSON.stringify({ stem }));
      return stem;
    }
  }

  private writeResults(id: string, working: string, name: string, outcome: Extract<Outcome, { state: 'completed' }>): Promise<void> {
    return this.lock(async () => {
      // Gone from .working/: this job was delivered before a restart.
      if (!(await exists(working))) return;
      const { outbox } = this.options;
      const stem = await this.reserve(id, () => freeStem(outbox, safeStem(name), OUTPUT_SUFFIXES));
      const written: string[] = [];
      const image = [formatExtension(outcome.result.format ?? 'png'), 'result'] as const;
      for (const [suffix, kind] of [image, ...OUTPUTS]) {
        if (outcome.result.outputs?.[kind] === undefined) continue;
        // Read one output at a time from the result store: a large PNG is never held twice.
        await writeAtomic(inside(outbox, stem + suffix), await this.queue.readOutput(id, kind), SHARED_FILE);
        written.push(stem + suffix);
      }
      const { base, ext } = splitName(name);
      const kept = await freeStem(this.done, base, [ext]);
      await fs.rename(working, inside(this.done, kept + ext));
      await this.clearWorking(working);
      await fs.rm(this.reservation(id), { force: true });
      this.log.info({ job: id, outputs: written, original: `done/${kept}${ext}` }, 'results written');
    });
  }

  /** Moves the original to failed/ with `<name>.error.txt` beside it: the reason in `hotfolder.locale`, the log's in English. */
  private moveToFailed(id: string, working: string, name: string, reason: Text): Promise<void> {
    return this.lock(async () => {
      if (!(await exists(working))) return;
      const { base, ext } = splitName(name);
      const suffixes = [ext, `${ext}.error.txt`];
      const stem = await this.reserve(id, () => freeStem(this.failed, base, suffixes));
      await writeAtomic(inside(this.failed, `${stem}${ext}.error.txt`), `${say(this.options.locale, reason)}\n`, SHARED_FILE);
      await fs.rename(working, inside(this.failed, stem + ext));
      await this.clearWorking(working);
      await fs.rm(this.reservation(id), { force: true });
      this.log.warn({ job: id, file: `failed/${stem}${ext}`, reason: say(DEFAULT_LOCALE, reason) }, 'moved to failed/');
    });
  }
}

/**
 * Arrival order: creation time, then name. Files copied in one go often share a timestamp (the clock ticks in
 * milliseconds or coarser), and copies go in name order.
 */
function byArrival([a, x]: [string, Candidate], [b, y]: [string, Candidate]): number {
  return x.arrived - y.arrived || (a < b ? -1 : a > b ? 1 : 0);
}

/** A file name's stem and extension; an extension too long to be one (over 16 bytes) stays in the stem. */
function splitName(name: string): { base: string; ext: string } {
  const { name: base, ext } = path.parse(name);
  return Buffer.byteLength(ext) > 16 ? { base: name, ext: '' } : { base, ext };
}

/** Removes the hidden temporary files that a crash in the middle of `writeAtomic` left behind. */
async function clearTemporaries(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    for (const entry of await fs.readdir(dir)) {
      if (TEMP_NAME.test(entry)) await fs.rm(path.join(dir, entry), { force: true });
    }
  }
}
