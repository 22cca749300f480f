/**
 * How large a file the bot may upload where it answers. Discord gives the limit on each interaction
 * (`attachment_size_limit`, which counts the server's boosts and the app's own entitlements); a message carries no
 * such field, so there it is the server's, from its boost tier; in a DM, the configured fallback (10 MiB, the
 * free limit since 2024).
 */

/** Upload limit by server boost tier (Discord's help centre: 10 MiB up to tier 1, 50 MiB at 2, 100 MiB at 3). */
const TIER_LIMITS: Readonly<Record<number, number>> = { 0: 10 * 2 ** 20, 1: 10 * 2 ** 20, 2: 50 * 2 ** 20, 3: 100 * 2 ** 20 };

/**
 * The upload limit in bytes: the interaction's own where given, else the server's from its boost tier, else
 * `fallback`.
 *
 * @example
 * uploadLimit({ interaction: 26214400 }, 10485760); // 26214400
 * uploadLimit({ premiumTier: 2 }, 10485760); // 52428800
 */
export function uploadLimit(from: { interaction?: number | null; premiumTier?: number | null }, fallback: number): number {
  if (typeof from.interaction === 'number' && from.interaction > 0) return from.interaction;
  if (typeof from.premiumTier === 'number' && from.premiumTier in TIER_LIMITS) return TIER_LIMITS[from.premiumTier];
  return fallback;
}
