/**
 * The pieces of what the bot writes that are the same in every language (names, bars, Discord timestamps); the
 * words themselves are in the `discord` section of the catalogues (src/i18n/catalogues).
 */

/** A name as it may appear in a message: no Markdown, mentions or line breaks, at most 80 characters. */
export function safeName(name: string): string {
  const plain = name.replace(/[\s*_`~|<>@#\\[\]()]+/g, ' ').trim();
  return (plain || 'image').slice(0, 80);
}

/**
 * A safe file name for an upload, derived from a person's file name but never used as a path: letters, digits,
 * dots, dashes and underscores only.
 *
 * @example
 * uploadName('../../etc/cat photo.jpg', 'png'); // 'cat_photo.png'
 */
export function uploadName(name: string, extension: string, suffix = ''): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const stem = base.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60) || 'image';
  return `${stem}${suffix}.${extension}`;
}

/**
 * A Discord relative timestamp for `etaMs` from now: each reader's client shows "in 2 minutes" in their own
 * language and keeps it current, so the bot need not edit just to count down.
 *
 * @example
 * relativeTime(90_000, 0); // '<t:90:R>'
 */
export function relativeTime(etaMs: number, now = Date.now()): string {
  return `<t:${Math.round((now + Math.max(0, etaMs)) / 1000)}:R>`;
}

/**
 * A ten-cell bar and the percentage (a message's width; the CLI redraws a terminal line of its own).
 *
 * @example
 * percentBar(3, 10); // '`███░░░░░░░` 30%'
 */
export function percentBar(done: number, total: number): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const cells = Math.round(fraction * 10);
  return `\`${'█'.repeat(cells)}${'░'.repeat(10 - cells)}\` ${Math.floor(fraction * 100)}%`;
}

/**
 * A file name in bold, as each message about an image starts: `**cat photo.png**`.
 *
 * @example
 * bold('cat*.png'); // '**cat .png**'
 */
export function bold(name: string): string {
  return `**${safeName(name)}**`;
}
