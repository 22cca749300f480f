/**
 * The hot folder's config section, `hotfolder` in config/enhancer.json: where the inbox and outbox are, whether
 * it runs, the presets (`inbox/<name>/`), the results' default format and the language its `.error.txt` reasons
 * and PDFs are written in.
 */
import { z } from 'zod';
import { defineSection, flag, folder, LOCALES, matchLocale, requestOption, wholeNumber, type EnhanceOptions, type SectionValue } from '../../src/index.js';

/** Options a preset sets; the rest come from the defaults. `report` writes the PDF summary (or not). */
export type Preset = Partial<EnhanceOptions> & { report?: boolean };

/** Folders inside the inbox that the hot folder uses itself. */
export const RESERVED_INBOX_NAMES = ['done', 'failed'];

/** A folder name that is safe everywhere; a leading `_` stays free for the hot folder's own use. */
const PRESET_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const presetName = z.string().refine((name) => PRESET_NAME.test(name) && !RESERVED_INBOX_NAMES.includes(name), {
  error: `a preset name is a folder name of a-z, 0-9, _ and - (up to 32, not ${RESERVED_INBOX_NAMES.join(' or ')})`,
});

/**
 * A language there is a catalogue for, as its catalogue's tag: `zh-Hans`, also written `zh`, `zh-CN`, `zh_CN`.
 * One there is none for is refused, so a typo does not quietly fall back to English.
 */
function language() {
  const error = `must be a language there is a catalogue for: ${LOCALES.join(', ')}`;
  return z.string({ error }).transform((tag, ctx) => {
    const locale = matchLocale(tag);
    if (locale) return locale;
    ctx.addIssue({ code: 'custom', message: error });
    return z.NEVER;
  });
}

const preset = z.strictObject({
  model: requestOption('model').optional(),
  scale: requestOption('scale').optional(),
  tile: requestOption('tile').optional(),
  tune: requestOption('tune').optional(),
  alpha: requestOption('alpha').optional(),
  device: requestOption('device').optional(),
  precision: requestOption('precision').optional(),
  format: requestOption('format').optional(),
  quality: requestOption('quality').optional(),
  size: requestOption('size').optional(),
  report: flag().optional(),
});

/**
 * The `hotfolder` section. `loadConfig({ sections: [hotfolderSection] })` puts it at `config.sections.hotfolder`.
 *
 * @example
 * const { inbox, presets } = loadConfig({ sections: [hotfolderSection] }).sections.hotfolder;
 */
export const hotfolderSection = defineSection({
  key: 'hotfolder',
  schema: z.strictObject({
    enabled: flag(),
    /** Where images are dropped (an absolute path once loaded). */
    inbox: folder(),
    /** Where results go. */
    outbox: folder(),
    /** Write the PDF summary too (a preset may say otherwise). */
    pdf: flag(),
    /** A file is taken once its size and time have not changed for this long. */
    settleMs: wholeNumber(50, 600_000),
    /** `inbox/<name>/` runs with these options; the file's object replaces the defaults. */
    presets: z.record(presetName, preset),
    /** The language of the `<name>.error.txt` reasons and the PDF summaries (logs stay English). */
    locale: language(),
    /** The results' format where neither a preset nor a format folder (`inbox/webp/`) says. */
    format: requestOption('format'),
  }),
  defaults: {
    enabled: true,
    inbox: 'inbox',
    outbox: 'outbox',
    pdf: true,
    settleMs: 1500,
    presets: { fast: { model: 'x4fast' }, raw: { tune: 'raw' }, anime: { model: 'anime' }, 'anime-fast': { model: 'anime-fast' } },
    locale: 'en',
    format: 'png',
  },
  env: { ENHANCER_HOTFOLDER: 'enabled', ENHANCER_INBOX: 'inbox', ENHANCER_OUTBOX: 'outbox', ENHANCER_HOTFOLDER_LOCALE: 'locale', ENHANCER_HOTFOLDER_FORMAT: 'format' },
});

/** The hot folder's checked config. */
export type HotFolderConfig = SectionValue<typeof hotfolderSection>;
