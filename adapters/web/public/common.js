// What both pages say about a job, from the events the server pushes (see adapters/web/web.ts).

/** "about 12 s", "about 3 min". */
export function duration(ms) {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 90) return `about ${s} s`;
  const m = Math.round(s / 60);
  return m < 90 ? `about ${m} min` : `about ${Math.round(m / 60)} h`;
}

export function ordinal(n) {
  const tail = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] ?? 'th');
  return `${n}${tail}`;
}

export function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A file's size as a person reads it: `820 kB` below a megabyte, else `3.2 MB`. */
export function size(bytes) {
  return bytes < 1e6 ? `${Math.max(1, Math.round(bytes / 1e3))} kB` : megabytes(bytes);
}

/**
 * Follows one job's events: `onChange(view)` with { state, text, done, total, reason, snapshot } after each.
 * `base` is the job's signed link (path and query). Returns a function that stops following.
 */
export function follow(base, onChange) {
  const [path, query] = base.split('?');
  const source = new EventSource(`${path}/events?${query}`);
  const view = { state: 'waiting', text: 'Waiting in line', done: 0, total: 0, snapshot: undefined };
  const say = () => onChange({ ...view });
  const waiting = (position, etaMs) => {
    view.state = 'waiting';
    view.text = position > 1 ? `Waiting: ${ordinal(position)} in line, done in ${duration(etaMs)}` : `Next in line, done in ${duration(etaMs)}`;
  };
  const ended = (snapshot) => {
    view.snapshot = snapshot;
    view.state = snapshot.state;
    if (snapshot.state === 'completed') view.text = 'Done';
    else if (snapshot.state === 'failed') view.text = `Failed: ${snapshot.reason}`;
    else view.text = `Cancelled: ${snapshot.reason}`;
    view.reason = snapshot.reason;
    source.close();
  };
  source.addEventListener('state', (e) => {
    const s = JSON.parse(e.data);
    view.snapshot = s;
    if (s.state === 'waiting') waiting(s.position, s.etaMs);
    else if (s.state === 'active') {
      view.state = 'active';
      view.done = s.progress?.tilesDone ?? 0;
      view.total = s.progress?.tilesTotal ?? 0;
      view.text = s.progress ? running(s.progress) : 'Running';
    } else if (s.state === 'finishing') view.text = 'Finishing: making the PNG and the comparison';
    else ended(s);
    say();
  });
  source.addEventListener('queued', (e) => {
    const q = JSON.parse(e.data);
    waiting(q.position, q.etaMs);
    say();
  });
  source.addEventListener('started', () => {
    view.state = 'active';
    view.text = 'Running';
    say();
  });
  source.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    view.state = 'active';
    view.done = p.tilesDone;
    view.total = p.tilesTotal;
    view.text = running(p);
    say();
  });
  source.addEventListener('preview', () => {
    view.preview = (view.preview ?? 0) + 1;
    say();
  });
  source.addEventListener('finishing', () => {
    view.state = 'finishing';
    view.text = 'Finishing: making the PNG and the comparison';
    say();
  });
  source.addEventListener('done', (e) => {
    ended(JSON.parse(e.data));
    say();
  });
  return () => source.close();
}

function running(p) {
  // The model's first preparation (`preparing the anime model, about a minute, once`): no tiles yet.
  if (p.preparing) return `${p.preparing[0].toUpperCase()}${p.preparing.slice(1)}`;
  return `Running: ${p.tilesDone} of ${p.tilesTotal} tiles, ${duration(p.etaMs)} left`;
}
