/**
 * Each person's language as their last interaction told it. A message sent to the bot carries no locale (only
 * interactions do), so an image sent in a DM or with a mention is answered in the language of that person's
 * last slash command or button, else the server's preferred language, else English. Kept in
 * `<state dir>/locales.json` beside the door's notes, so a restart does not forget it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { LOCALES, writeAtomic, type Locale, type Logger } from '../../src/index.js';

/** Enough people for any server the bot is in; the longest unheard-of are forgotten first. */
const MOST = 10_000;

/**
 * @example
 * const locales = new KnownLocales('/srv/data/discord', log);
 * await locales.open();
 * locales.remember('1234', 'zh-Hans');
 * locales.of('1234'); // 'zh-Hans'
 */
export class KnownLocales {
  private readonly byUser = new Map<string, Locale>();
  private readonly file: string;
  private saving = Promise.resolve();

  constructor(
    dir: string,
    private readonly log: Logger,
    private readonly most = MOST,
  ) {
    this.file = path.join(dir, 'locales.json');
  }

  /** Reads what an earlier run remembered (a missing or damaged file is an empty memory). */
  async open(): Promise<void> {
    let saved: unknown;
    try {
      saved = JSON.parse(await fs.readFile(this.file, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ file: this.file, why: (error as Error).message }, 'the remembered languages could not be read: starting without them');
      return;
    }
    if (typeof saved !== 'object' || saved === null) return;
    // A catalogue removed since then is not a language any more.
    for (const [user, locale] of Object.entries(saved)) if (typeof locale === 'string' && LOCALES.includes(locale)) this.byUser.set(user, locale);
  }

  /** The language `user` last used, if any. */
  of(user: string): Locale | undefined {
    return this.byUser.get(user);
  }

  /** Notes `user`'s language; written to disk when it changed. */
  remember(user: string, locale: Locale): void {
    const known = this.byUser.get(user);
    // Most recent last, so the first entries are the longest unheard-of.
    this.byUser.delete(user);
    this.byUser.set(user, locale);
    for (const oldest of this.byUser.keys()) {
      if (this.byUser.size <= this.most) break;
      this.byUser.delete(oldest);
    }
    if (known !== locale) this.save();
  }

  /** Waits for the writes under way. */
  async flushed(): Promise<void> {
    await this.saving;
  }

  private save(): void {
    // One write at a time, each of the whole map as it is then: the last one written is the latest.
    this.saving = this.saving
      .then(() => writeAtomic(this.file, JSON.stringify(Object.fromEntries(this.byUser))))
      .catch((error: unknown) => this.log.warn({ file: this.file, why: (error as Error).message }, 'could not write the remembered languages'));
  }
}
