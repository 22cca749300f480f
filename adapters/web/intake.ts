/**
 * Taking images in: an upload (one or more files, as the page and scripts send them) and "Enhance again" (a kept
 * upload with other options). Each file becomes one job, kept for its page before it is queued, or gets its
 * one-line reason; the whole upload counts once against its sender's limit (people.ts).
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_LOCALE, EnhanceError, newJobId, probeImage, reasonTextOf, say, type EnhanceOptions, type EnhanceQueue, type EnhanceRequest, type Locale, type Logger, type Text } from '../../src/index.js';
import type { Keep, KeptJob } from './keep.js';
import type { LinkSigner } from './links.js';
import { MAX_FILES, type People, type Visitor, type WebReply } from './people.js';
import type { UploadedFile } from './upload.js';

/** What a person may choose per upload, as a form or a script sends it. */
export interface Choices {
  options: Partial<Pick<EnhanceOptions, 'model' | 'scale' | 'tune' | 'format' | 'quality' | 'size'>>;
  /** Also make the PDF summary. */
  report: boolean;
  /** Ask before a job over `limits.confirmOver` (the page sets it; a script that sends nothing runs at once). */
  ask?: boolean;
}

/** One file's answer: its job's id and signed link, or the reason it was refused. */
export interface FileAnswer {
  name: string;
  id?: string;
  /** The job page's path and query (`/job/<id>?e=…&s=…`); its state, events and files hang below it. */
  link?: string;
  reason?: string;
  /** The model that runs (the plan's, where `auto` chose), its estimate and, where chosen, why. */
  model?: string;
  etaSeconds?: number;
  why?: string;
  /** Where `auto` chose: the other model and its time, for the page to offer (`label` in the answer's language). */
  other?: { model: string; label: string };
  /** Not queued yet: the job would take long, and its person is asked (only when `ask` was set). */
  confirm?: { question: string; run: { model: string; label: string }; other?: { model: string; label: string } };
}

/**
 * The choices in a form's fields or a JSON body; anything left out or empty takes the service's default.
 * Values are checked when the job is queued, with reasons that name what is allowed.
 *
 * @example
 * choicesFrom({ model: 'x4fast', scale: '2', pdf: 'on' }); // { options: { model: 'x4fast', scale: 2 }, report: true }
 */
export function choicesFrom(fields: Record<string, unknown>): Choices {
  const text = (key: string) => (typeof fields[key] === 'string' || typeof fields[key] === 'number' ? String(fields[key]).trim() : '');
  const options: Choices['options'] = {};
  if (text('model')) options.model = text('model');
  if (text('scale')) options.scale = Number(text('scale')) as EnhanceOptions['scale'];
  if (text('tune')) options.tune = text('tune') as EnhanceOptions['tune'];
  if (text('format')) options.format = text('format') as EnhanceOptions['format'];
  if (text('quality')) options.quality = Number(text('quality'));
  if (text('size')) options.size = Number(text('size'));
  const yes = (value: unknown) => value === true || value === 'on' || value === 'true' || value === '1';
  return { options, report: yes(fields.pdf), ask: yes(fields.ask) };
}

export interface IntakeOptions {
  queue: EnhanceQueue;
  keep: Keep;
  links: LinkSigner;
  people: People;
  /** How long a job's link and results are kept. */
  keepFor: number;
  maxPixels: number;
  /** The service's default model, recorded for the page when a request names none. */
  defaultModel: string;
  logger: Logger;
}

export class Intake {
  constructor(private readonly o: IntakeOptions) {}

  /**
   * Reserves one upload for `visitor`, or says why not (their limit) in `locale`. Call `done` once every file
   * was offered, whatever happened.
   */
  begin(visitor: Visitor, locale: Locale): { upload: string; done: () => void } | { refused: string } {
    const slot = this.o.people.reserve(visitor);
    if ('count' in slot) return { refused: say(locale, { key: 'webDoor.uploadLimit', values: { count: slot.count, limit: slot.limit } }) };
    return { upload: slot.upload, done: () => this.o.people.close(slot.upload) };
  }

  /** The answer for a file past `MAX_FILES` in one upload. */
  tooMany(name: string, locale: Locale): FileAnswer {
    return { name: shownName(name), reason: say(locale, { key: 'web.tooManyFiles', values: { n: MAX_FILES } }) };
  }

  /**
   * One file as a job of `upload`, `locale` stored with it (its PDF and comparison are made in it); its reason
   * said in it.
   */
  async submit(file: UploadedFile, choices: Choices, visitor: Visitor, upload: string, locale: Locale): Promise<FileAnswer> {
    const name = shownName(file.name);
    const refused = (reason: Text) => ({ name, reason: say(locale, reason) });
    if ('reason' in file) {
      this.o.logger.info({ name, reason: say(DEFAULT_LOCALE, file.reason) }, 'upload refused');
      return refused(file.reason);
    }
    const id = newJobId();
    const now = Date.now();
    const expires = now + this.o.keepFor;
    const { options, report } = choices;
    try {
      if (choices.ask) {
        const question = await this.question({ input: file.bytes, name, owner: visitor.owner, report, earlyPreview: true, options, locale }, locale);
        if (question) return { name, confirm: question };
      }
      // The header once here too, for the page's record (the queue checks it again): a bad file gets its reason.
      const header = await probeImage(file.bytes, this.o.maxPixels);
      const shown = { ...options, model: options.model ?? this.o.defaultModel, scale: options.scale ?? 4, tune: options.tune ?? 'gentle', format: options.format ?? 'png' } as KeptJob['options'];
      // Kept before it is queued: its delivery may come at once (a cached result), and finds it here.
      await this.o.keep.add(
        { id, name, createdAt: now, expires, options: shown, report, format: header.format, width: header.width, height: header.height, bytes: file.bytes.length, state: 'waiting', people: visitor.names },
        file.bytes,
      );
      const replyTo: WebReply = { adapter: 'web', upload, people: visitor.names };
      this.o.people.add(upload, id);
      const job = await this.o.queue.submit({ input: file.bytes, name, owner: visitor.owner, replyTo, report, earlyPreview: true, options, locale }, id);
      this.o.logger.info({ job: id, name, bytes: file.bytes.length, locale }, 'upload queued');
      const { plan } = job;
      const other = plan?.scene && plan.other ? { other: { model: plan.other.model, label: say(locale, { key: 'webDoor.otherModel', values: { model: plan.other.model, eta: plan.other.etaMs } }) } } : {};
      const said = plan ? { etaSeconds: Math.round(plan.etaMs / 1000), ...(plan.scene ? { why: say(locale, plan.reason) } : {}), ...other } : {};
      return { name, id, link: this.o.links.link(id, expires), model: job.request.options.model, ...said };
    } catch (error) {
      this.o.people.settle(id);
      await this.o.keep.remove(id);
      if (error instanceof EnhanceError) {
        this.o.logger.info({ name, reason: error.message }, 'upload refused');
        return refused(reasonTextOf(error));
      }
      // Not the person's to mend: a plain line and a reference to the log line that has the rest.
      const ref = randomBytes(4).toString('hex');
      this.o.logger.error({ ref, err: error, name }, 'queueing an upload failed');
      return refused({ key: 'webDoor.internal', values: { ref } });
    }
  }

  /** The question for a job over `limits.confirmOver`, or undefined when it may run at once. */
  private async question(request: EnhanceRequest, locale: Locale): Promise<FileAnswer['confirm']> {
    const plan = await this.o.queue.plan(request);
    if (!plan.confirm) return undefined;
    const label = (model: string, eta: number) => ({ model, label: say(locale, { key: 'webDoor.confirmRun', values: { model, eta } }) });
    const other = plan.other && plan.other.etaMs < plan.etaMs ? { other: label(plan.other.model, plan.other.etaMs) } : {};
    return { question: say(locale, { key: 'webDoor.confirm', values: { model: plan.model, eta: plan.etaMs } }), run: label(plan.model, plan.etaMs), ...other };
  }
}

/** A file name as shown: its last part, without control characters, at most 200 characters. Never a path. */
export function shownName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = name.split(/[\\/]/).pop()!.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return (base || 'upload').slice(0, 200);
}
