/**
 * The Telegram bot's config section, `telegram` in config/enhancer.json. The bot runs when a token is set
 * (`TELEGRAM_BOT_TOKEN`); `TELEGRAM_API_ROOT` points it at another Bot API server (a self-hosted one, or the
 * tests' fake). The download and upload limits follow the server: Telegram's cloud lets bots download 20 MB and
 * upload 50 MB; a self-hosted server started with `--local` lifts both to 2000 MB (set `localServer`).
 */
import { z } from 'zod';
import { defineSection, flag, wholeNumber, type SectionValue } from '../../src/index.js';

/** Telegram's own server. */
export const TELEGRAM_API = 'https://api.telegram.org';

/** What the server allows a bot, in bytes; decimal megabytes, so a file on the edge is refused rather than failing. */
export const SERVER_LIMITS = {
  cloud: { download: 20_000_000, upload: 50_000_000 },
  local: { download: 2_000_000_000, upload: 2_000_000_000 },
} as const;

/** A list of Telegram ids: a JSON array of numbers, or a variable's `123, -100456`. */
function idList() {
  const error = 'must be a list of Telegram ids (whole numbers), e.g. [12345, -1001234567890] or "12345,-1001234567890"';
  return z.preprocess((value: number[] | string) => {
    if (typeof value !== 'string') return value;
    const parts = value.split(/[\s,]+/).filter(Boolean);
    // A word that is not an id leaves the string as it is, so the error names the whole list.
    return parts.every((p) => /^-?\d+$/.test(p)) ? parts.map(Number) : value;
  }, z.array(z.number({ error }).int({ error }), { error }));
}

/** An http(s) address without a trailing slash (grammY refuses one). */
function apiRoot() {
  const error = 'must be an http:// or https:// address, e.g. https://api.telegram.org';
  return z
    .string({ error })
    .refine((value) => /^https?:\/\/[^\s/]+(\/\S*)?$/.test(value), { error })
    .transform((value) => value.replace(/\/+$/, ''));
}

/**
 * The `telegram` section. `loadConfig({ sections: [telegramSection] })` puts it at `config.sections.telegram`.
 *
 * @example
 * const telegram = loadConfig({ sections: [telegramSection] }).sections.telegram;
 * if (telegram.token) startBot(telegram);
 */
export const telegramSection = defineSection({
  key: 'telegram',
  schema: z.strictObject({
    /** Off turns the bot off even with a token set. */
    enabled: flag(),
    /** From @BotFather. Empty: the bot is off. Never shown in errors or logs. */
    token: z.string({ error: 'must be the bot token from @BotFather' }),
    /** The Bot API server. */
    apiRoot: apiRoot(),
    /** The server is a self-hosted Bot API server run with `--local`: 2000 MB limits, files read from its disk. */
    localServer: flag(),
    /** Largest download, in bytes; 0 follows the server (20 MB, or 2000 MB with `localServer`). */
    maxDownloadBytes: wholeNumber(0, 2 ** 31),
    /** Largest upload, in bytes; 0 follows the server (50 MB, or 2000 MB with `localServer`). */
    maxUploadBytes: wholeNumber(0, 2 ** 31),
    /** Only these users (and anyone in `allowedChats`) may use the bot; both empty: everyone may. */
    allowedUsers: idList(),
    /** Chats (groups, or a person's private chat) whose members may use the bot. */
    allowedChats: idList(),
    /** At most one progress edit per chat this often (Telegram allows about one edit per second per chat, 20 a minute in groups). */
    progressEditMs: wholeNumber(0, 600_000),
    /** Long-polling timeout for getUpdates, in seconds. */
    pollTimeoutS: wholeNumber(0, 50),
    /** A download of a person's image from which nothing arrives for this many seconds is given up. */
    downloadTimeoutS: wholeNumber(1, 3600),
  }),
  defaults: {
    enabled: true,
    token: '',
    apiRoot: TELEGRAM_API,
    localServer: false,
    maxDownloadBytes: 0,
    maxUploadBytes: 0,
    allowedUsers: [],
    allowedChats: [],
    progressEditMs: 3000,
    pollTimeoutS: 30,
    downloadTimeoutS: 30,
  },
  env: {
    TELEGRAM_ENABLED: 'enabled',
    TELEGRAM_BOT_TOKEN: 'token',
    TELEGRAM_API_ROOT: 'apiRoot',
    TELEGRAM_LOCAL_SERVER: 'localServer',
    TELEGRAM_ALLOWED_USERS: 'allowedUsers',
    TELEGRAM_ALLOWED_CHATS: 'allowedChats',
    TELEGRAM_MAX_DOWNLOAD_BYTES: 'maxDownloadBytes',
    TELEGRAM_MAX_UPLOAD_BYTES: 'maxUploadBytes',
    TELEGRAM_PROGRESS_EDIT_MS: 'progressEditMs',
    TELEGRAM_DOWNLOAD_TIMEOUT_S: 'downloadTimeoutS',
  },
});

/** The Telegram section, checked. */
export type TelegramConfig = SectionValue<typeof telegramSection>;

/**
 * The download and upload limits in force: the configured ones, else the server's.
 *
 * @example
 * serverLimits({ localServer: false, maxDownloadBytes: 0, maxUploadBytes: 10e6 }); // { download: 20e6, upload: 10e6 }
 */
export function serverLimits(config: Pick<TelegramConfig, 'localServer' | 'maxDownloadBytes' | 'maxUploadBytes'>): { download: number; upload: number } {
  const server = SERVER_LIMITS[config.localServer ? 'local' : 'cloud'];
  return { download: config.maxDownloadBytes || server.download, upload: config.maxUploadBytes || server.upload };
}
