/**
 * The one line a bad config value stops start-up with: the full key, what is allowed, the value (never a
 * secret's) and where it came from, e.g. `config: limits.queuedPerOwner must be a whole number from 1 to 10000
 * (got 0 from config/enhancer.json)`.
 */
import type { z } from 'zod';

/** Thrown for anything wrong in the config a person wrote; the message is one line starting `config: `. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(`config: ${message}`);
    this.name = 'ConfigError';
  }
}

/** Where a value came from: `the defaults`, the config file's name, or `$VARIABLE`. */
export interface Source {
  from: string;
  /** Set from an environment variable (its relative paths are the user's own, from the current folder). */
  variable: boolean;
}

/**
 * Keys whose values are secrets: an error names them and says how long the value is, never what it is. A `url`
 * counts, since it may carry a password (`redis://:password@host`).
 */
const SECRET_KEY = /token|secret|password|api_?key|access_?keys?|^url$/i;

/** A value as an error line shows it: short, and a secret only by its length. */
export function show(value: unknown, secret: boolean): string {
  if (secret) return typeof value === 'string' ? `a value of ${value.length} characters` : typeOf(value);
  if (value === undefined || Array.isArray(value) || (typeof value === 'object' && value !== null)) return typeOf(value);
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 76)}…${text.at(-1)}` : text;
}

function typeOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'number' || typeof value === 'string' ? `a ${typeof value}` : `a ${typeof value} value`;
}

export function unknownKeyLine(key: string, name: string, from: string, known: readonly string[]): string {
  return `unknown key ${key ? `${key}.` : ''}${name} (from ${from}); known keys: ${known.join(', ')}`;
}

/** What the loader knows about the place a zod issue points at. */
export interface IssueContext {
  /** The value there, as laid (before any coercion). */
  value: unknown;
  source: Source;
  /** The keys the object there allows (for unknown keys). */
  knownKeys: readonly string[];
}

/** One zod issue as the line a person reads. */
export function issueLine(issue: z.core.$ZodIssue, { value, source, knownKeys }: IssueContext): string {
  const key = issue.path.join('.');
  const secret = issue.path.some((part) => typeof part === 'string' && SECRET_KEY.test(part));
  switch (issue.code) {
    case 'unrecognized_keys':
      return unknownKeyLine(key, issue.keys[0]!, source.from, knownKeys);
    case 'invalid_key':
      // The bad part is the name itself, which is already in the key.
      return `${key}: ${issue.issues[0]?.message ?? issue.message} (from ${source.from})`;
  }
  // `normalizeOptions` (see requestOption) already shows the value in its message.
  if (issue.code === 'custom' && issue.params?.showsValue && !secret) return `${key}: ${issue.message} from ${source.from}`;
  const message = issue.code === 'custom' && issue.params?.showsValue ? 'is not allowed' : issue.message;
  // A phrase reads on from the key ("settleMs must be …"); a sentence of its own goes after a colon.
  const said = /^(must|is|has) /.test(message) ? `${key} ${message}` : `${key}: ${message}`;
  return `${said} (got ${show(value, secret)} from ${source.from})`;
}

/**
 * Messages for zod's own checks, in the same "must …" form as the helpers' (used for schemas a section writes
 * with plain zod, e.g. `z.string().min(8)`).
 */
export const mustMessages: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${article(issue.expected === 'array' ? 'list' : issue.expected)}`;
    case 'too_small':
      return `must be at least ${issue.minimum}${unit(issue.origin)}`;
    case 'too_big':
      return `must be at most ${issue.maximum}${unit(issue.origin)}`;
    case 'invalid_value':
      return issue.values.length === 1 ? `must be ${JSON.stringify(issue.values[0])}` : `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' && 'pattern' in issue ? `must match ${issue.pattern}` : `must be ${article(issue.format)}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'invalid_union':
      return 'is none of the allowed forms';
    default:
      return 'is not allowed';
  }
};

const article = (noun: string) => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);
const unit = (origin: string) => (origin === 'string' ? ' characters long' : origin === 'array' || origin === 'set' ? ' items' : '');
