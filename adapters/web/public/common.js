// What both pages say about a job, from the events the server pushes (see adapters/web/web.ts). The server says
// each status line (`text`) in this viewer's language (adapters/web/status.ts), so the page only shows it.
import { t } from '/static/language.js';

/**
 * Follows one job's events: `onChange(view)` with { state, text, done, total, reason, snapshot } after each.
 * `base` is the job's signed link (path and query). Returns a function that stops following.
 */
export function follow(base, onChange) {
  const [path, query] = base.split('?');
  const source = new EventSource(`${path}/events?${query}`);
  const view = { state: 'waiting', text: t('web.connecting'), done: 0, total: 0, snapshot: undefined };
  const say = () => onChange({ ...view });
  const ended = (snapshot) => {
    view.snapshot = snapshot;
    view.state = snapshot.state;
    view.text = snapshot.text;
    view.reason = snapshot.reason;
    source.close();
  };
  source.addEventListener('state', (e) => {
    const s = JSON.parse(e.data);
    view.snapshot = s;
    view.text = s.text;
    if (s.state === 'waiting' || s.state === 'finishing') view.state = s.state;
    else if (s.state === 'active') {
      view.state = 'active';
      view.done = s.progress?.tilesDone ?? 0;
      view.total = s.progress?.tilesTotal ?? 0;
    } else ended(s);
    say();
  });
  for (const type of ['queued', 'started', 'finishing']) {
    source.addEventListener(type, (e) => {
      view.state = { queued: 'waiting', started: 'active', finishing: 'finishing' }[type];
      view.text = JSON.parse(e.data).text;
      say();
    });
  }
  source.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    view.state = 'active';
    view.done = p.tilesDone;
    view.total = p.tilesTotal;
    view.text = p.text;
    say();
  });
  source.addEventListener('preview', () => {
    view.preview = (view.preview ?? 0) + 1;
    say();
  });
  source.addEventListener('done', (e) => {
    ended(JSON.parse(e.data));
    say();
  });
  return () => source.close();
}

/**
 * The options a form sets, as the server reads them (`model`, `scale`, `tune`, `pdf`): every named select and
 * checkbox in it. The upload form and "Enhance again" both send theirs through here, so one cannot leave out an
 * option the other sends. A checkbox is sent ticked or not (`on`, `off`), not left out when clear as a browser's
 * own submission would: "again" keeps each option of the job it is not told (routes/job.ts), so an untick left
 * out would have kept the job's PDF.
 */
export function chosenOptions(form) {
  const options = {};
  for (const field of form.querySelectorAll('select[name], input[type=checkbox][name]')) {
    options[field.name] = field.type === 'checkbox' ? (field.checked ? 'on' : 'off') : field.value;
  }
  return options;
}
