/**
 * Fair turns between people: when several have jobs waiting, they take turns, so a person who dropped twenty
 * images does not make the next person wait for all twenty. Each job gets a turn number; the line runs in turn
 * order, ties in submission order (so one person's jobs, and the hot folder's files, keep their own order).
 *
 * A person's next job gets the turn after their previous one, but never one earlier than the turn now running:
 * a newcomer joins the current round instead of the back of the line.
 *
 * @example
 * const turns = new FairTurns();
 * turns.next('a'); turns.next('a'); turns.next('a'); // 1, 2, 3
 * turns.next('b');                                    // 1: runs right after a's first job
 */
export class FairTurns {
  private readonly last = new Map<string, number>();
  private current = 0;

  /** The turn of `owner`'s next job. */
  next(owner: string): number {
    const turn = Math.max((this.last.get(owner) ?? 0) + 1, this.current);
    this.last.set(owner, turn);
    return turn;
  }

  /** A job of this turn started: later newcomers join from here. */
  started(turn: number): void {
    if (turn <= this.current) return;
    this.current = turn;
    // A person whose last turn is behind the one running is a newcomer again (`next` gives them `current` either
    // way): forgotten, or the map keeps one entry per person who ever sent a job (every chat user, for ever).
    for (const [owner, last] of this.last) if (last < this.current) this.last.delete(owner);
  }

  /**
   * Nobody has a job waiting or running: no one is owed a turn before anyone else, so every person starts afresh.
   * Without it, people who each sent one job while no round moved on would stay remembered.
   */
  idle(): void {
    this.last.clear();
  }

  /** People remembered: those whose last job's turn is not behind the one running. */
  get owners(): number {
    return this.last.size;
  }
}
