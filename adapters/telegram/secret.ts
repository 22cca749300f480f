/**
 * Keeping the bot token out of everything written. grammY builds every request URL as `<root>/bot<token>/<method>`
 * and its network errors keep the underlying fetch error, whose message is `request to <that URL> failed`; the
 * log's redaction only knows keys, not text inside messages. So nothing from grammY or a download is logged or
 * thrown on as it is: it goes through `safeReason` first.
 */
import { GrammyError, HttpError } from 'grammy';

/**
 * One line describing `error` with every copy of `token` (and of the URL path segment `bot<token>`) replaced.
 *
 * @example
 * safeReason(new Error('request to https://x/bot123:AA/getMe failed'), '123:AA'); // 'request to https://x/bot[token]/getMe failed'
 */
export function safeReason(error: unknown, token: string): string {
  let text: string;
  if (error instanceof GrammyError) text = `${error.method}: ${error.error_code} ${error.description}`;
  else if (error instanceof HttpError) text = `${error.message}${error.error instanceof Error ? ` (${error.error.message})` : ''}`;
  else text = error instanceof Error ? error.message : String(error);
  return redact(text.split('\n')[0], token);
}

/** `text` with `token` replaced by `[token]`; also the URL-encoded form, which a URL in an error may carry. */
export function redact(text: string, token: string): string {
  if (!token) return text;
  let out = text;
  for (const form of new Set([token, encodeURIComponent(token)])) out = out.split(form).join('[token]');
  return out;
}

/** An error safe to throw on to the queue (which logs it): its message is `safeReason`, nothing else attached. */
export function safeError(error: unknown, token: string): Error {
  return new Error(safeReason(error, token));
}
