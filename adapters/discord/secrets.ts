/**
 * Keeping secrets out of the data folder and the log. The bot token is never written anywhere. An interaction
 * token must be kept with the job (after a restart it is the only way to edit the reply), so it is stored sealed
 * with AES-256-GCM under a key derived from the bot token: the data folder alone does not give it away, and a new
 * bot token simply makes old ones unreadable (those jobs then answer by channel message).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { DiscordAPIError, HTTPError } from 'discord.js';

/**
 * How long an interaction token is scrubbed from text after it was last sealed or opened. Discord lets a token
 * be used for 15 minutes; after that a call with it fails before it could echo it, and a path holding it is
 * still scrubbed by its shape (`scrub`). An hour leaves room for a slow retry.
 */
const TOKEN_MEMORY_MS = 3_600_000;

/** Seals and opens interaction tokens; scrubs known secrets out of any text. */
export class Secrets {
  private readonly key: Buffer;
  private readonly botToken: string;
  /**
   * Interaction tokens seen, with when they were last: forgotten after `TOKEN_MEMORY_MS`. Kept for ever, they
   * were one per job for the life of the process (issue 24), and every `scrub` went through all of them.
   */
  private readonly known = new Map<string, number>();

  constructor(
    botToken: string,
    private readonly now: () => number = Date.now,
  ) {
    this.key = createHash('sha256').update('image-enhancer discord interaction token\0').update(botToken).digest();
    this.botToken = botToken;
  }

  /** Interaction tokens remembered for `scrub` now. */
  get remembered(): number {
    return this.known.size;
  }

  private remember(token: string): void {
    const now = this.now();
    // Oldest first (a token seen again moves to the end), so the sweep stops at the first one still fresh.
    for (const [old, at] of this.known) {
      if (now - at < TOKEN_MEMORY_MS) break;
      this.known.delete(old);
    }
    this.known.delete(token);
    this.known.set(token, now);
  }

  /**
   * `iv.tag.ciphertext`, base64url.
   *
   * @example
   * const sealed = secrets.seal(interaction.token); secrets.open(sealed) === interaction.token;
   */
  seal(token: string): string {
    this.remember(token);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    return [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url')).join('.');
  }

  /** The token, or undefined when it was sealed under another bot token (or is damaged). */
  open(sealed: string): string | undefined {
    try {
      const [iv, tag, data] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
      decipher.setAuthTag(tag);
      const token = Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
      this.remember(token);
      return token;
    } catch {
      return undefined;
    }
  }

  /** `text` with every known token and anything that looks like a webhook token in a path replaced. */
  scrub(text: string): string {
    let out = text;
    for (const secret of [this.botToken, ...this.known.keys()]) if (secret) out = out.split(secret).join('[token]');
    return out.replace(/(webhooks\/\d+\/|interactions\/\d+\/)[^/\s?]+/g, '$1[token]');
  }

  /**
   * A one-line reason for a failed Discord call, safe to log: the status and Discord's code and message, never
   * the request's address (which holds the interaction token) or headers.
   *
   * @example
   * secrets.reason(error); // 'Discord 404 (10003): Unknown Channel'
   */
  reason(error: unknown): string {
    if (error instanceof DiscordAPIError) return this.scrub(`Discord ${error.status} (${error.code}): ${error.message.split('\n')[0]}`);
    if (error instanceof HTTPError) return this.scrub(`Discord ${error.status}: ${error.message.split('\n')[0]}`);
    return this.scrub(error instanceof Error ? error.message.split('\n')[0] : String(error));
  }
}
