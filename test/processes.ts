/**
 * Processes as Linux's /proc shows them, to find every process a start made (npm, the launcher, the service) and
 * to tell afterwards whether each is gone. A process is known by its pid and start time, so a pid reused by the
 * system is not mistaken for the old process; a zombie (exited, not yet reaped) counts as gone.
 */
import fs from 'node:fs';

export interface Proc {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot: with the pid, names the process. */
  start: string;
  cmd: string;
}

function stat(pid: number): { state: string; ppid: number; start: string } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces and parentheses; the fields after the last ')' do not.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]), start: fields[19] };
  } catch {
    return undefined;
  }
}

/** The process and everything below it, parents before children. */
export function processTree(root: number): Proc[] {
  const all: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    const s = Number.isInteger(pid) ? stat(pid) : undefined;
    if (!s || s.state === 'Z') continue;
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    all.push({ pid, ppid: s.ppid, start: s.start, cmd });
  }
  const tree = all.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) tree.push(...all.filter((p) => p.ppid === tree[i].pid));
  return tree;
}

/** Whether the process still runs (not exited, not a zombie, pid not reused). */
export function alive(p: Proc): boolean {
  const s = stat(p.pid);
  return s !== undefined && s.start === p.start && s.state !== 'Z';
}

/**
 * Resolves once none of the processes runs, or rejects after `timeoutMs` naming those still running. Call it
 * after an event that says they are ending (their stderr closed, an exit): the kernel closes a process's files
 * before it marks it exited, so a short wait may remain.
 */
export async function untilGone(procs: Proc[], timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = procs.filter(alive);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still running: ${left.map((p) => `${p.pid} (${p.cmd})`).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** SIGKILL to every process still running, for clean-up after a failed test. */
export function killAll(procs: Proc[]): void {
  for (const p of procs) {
    if (!alive(p)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
