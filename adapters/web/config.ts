/**
 * The web door's config section, `web` in config/enhancer.json: where it listens, who may upload, and how long
 * results are kept for their links.
 */
import { z } from 'zod';
import { defineSection, flag, wholeNumber, type SectionValue } from '../../src/config.js';

const DURATION = /^(\d+)\s*(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A duration such as `7d`, `12h`, `30m` or `90s` (or a number of milliseconds), as milliseconds; from 1 s to a year.
 *
 * @example
 * parseDuration('7d'); // 604_800_000
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return value;
  const match = DURATION.exec(value.trim());
  if (match) return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return /^\d+$/.test(value.trim()) ? Number(value) : undefined;
}

function duration() {
  const error = 'must be a duration from 1s to 365d, e.g. "7d", "12h", "30m" or "90s"';
  return z.preprocess((value: string | number) => parseDuration(value) ?? value, z.number({ error }).int({ error }).min(1_000, { error }).max(365 * UNIT_MS.d, { error }));
}

/** Access keys: a JSON array of strings, or a variable's `key1,key2`. Each at least 12 characters, so it cannot be guessed by hand. */
function keyList() {
  const error = 'must be a list of access keys of at least 12 characters, e.g. ["a-long-random-key"] or "key1,key2"';
  return z.preprocess(
    (value: string[] | string) => (typeof value === 'string' ? value.split(',').map((k) => k.trim()).filter(Boolean) : value),
    z.array(z.string({ error }).min(12, { error }), { error }),
  );
}

/** Host names people open the door by besides its address and `localhost`: `["enhancer.lan"]` or `"a.lan,b.lan"`. */
function hostList() {
  const error = 'must be a list of host names, e.g. ["enhancer.lan"] or "enhancer.lan,photos.home"';
  return z.preprocess(
    (value: string[] | string) => (typeof value === 'string' ? value.split(',').map((h) => h.trim()).filter(Boolean) : value),
    z.array(z.string({ error }).regex(/^[A-Za-z0-9.-]{1,253}$/, { error }), { error }),
  );
}

/** The address people reach the web door at, without a trailing slash; empty: chat answers carry no link. */
function publicUrl() {
  const error = 'must be the http:// or https:// address people reach the web page at, e.g. https://enhance.example.org (or empty)';
  return z
    .string({ error })
    .trim()
    .refine((value) => value === '' || (/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(value) && URL.canParse(value)), { error })
    .transform((value) => value.replace(/\/+$/, ''));
}

/**
 * The `web` section. `loadConfig({ sections: [webSection] })` puts it at `config.sections.web`.
 *
 * @example
 * const { port, host } = loadConfig({ sections: [webSection] }).sections.web; // 8080, '127.0.0.1'
 */
export const webSection = defineSection({
  key: 'web',
  schema: z.strictObject({
    /** 0 turns the web door off. */
    port: wholeNumber(0, 65_535),
    /** 127.0.0.1 keeps it on this machine; any other address needs `accessKeys` or `open`. */
    host: z.string({ error: 'must be an address to listen on, e.g. 127.0.0.1 or 0.0.0.0' }).trim().min(1, { error: 'must be an address to listen on, e.g. 127.0.0.1 or 0.0.0.0' }),
    /**
     * Names the door answers to besides IP addresses, `localhost` and `publicUrl`'s: a request for any other name
     * (DNS rebinding sends one) is refused.
     */
    hosts: hostList(),
    /** Keys that let a browser upload on a non-loopback address (entered once, kept in a cookie). A secret. */
    accessKeys: keyList(),
    /** Uploads open to anyone who reaches the address, on purpose, without a key. */
    open: flag(),
    /** How long a web job's results (and its link) are kept. */
    keepFor: duration(),
    /** The kept results' total; past it the oldest go first. */
    keepBytes: wholeNumber(1_000_000, Number.MAX_SAFE_INTEGER),
    /** Uploads (requests, each with one or more files) one address may make per minute. */
    uploadsPerMinute: wholeNumber(1, 10_000),
    /**
     * Where people reach this page from elsewhere (behind a reverse proxy, say). When set, every Telegram and
     * Discord answer carries a link to its job page, and a PNG too large for the chat is sent as that link.
     */
    publicUrl: publicUrl(),
  }),
  defaults: {
    port: 8080,
    host: '127.0.0.1',
    hosts: [],
    accessKeys: [],
    open: false,
    keepFor: '7d',
    keepBytes: 5_000_000_000,
    uploadsPerMinute: 30,
    publicUrl: '',
  },
  env: {
    ENHANCER_WEB_PORT: 'port',
    ENHANCER_WEB_HOST: 'host',
    ENHANCER_WEB_HOSTS: 'hosts',
    ENHANCER_WEB_KEY: 'accessKeys',
    ENHANCER_WEB_OPEN: 'open',
    ENHANCER_WEB_KEEP_FOR: 'keepFor',
    ENHANCER_PUBLIC_URL: 'publicUrl',
  },
});

/** The web door's checked config. */
export type WebConfig = SectionValue<typeof webSection>;
