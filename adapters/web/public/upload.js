// The upload page: options from the server, files chosen or dropped, one job per file, each listed with its state.
import { chosenOptions, follow } from '/static/common.js';
import { t } from '/static/language.js';

const $ = (id) => document.getElementById(id);
let session;
let chosen = [];

async function load() {
  session = await (await fetch('/api/session')).json();
  // Each model by its use ("Photos, fast"); what it is made of is said in a finished job's summary.
  for (const m of session.models) $('model').append(new Option(m.label, m.name, false, m.name === session.defaults.model));
  $('limits').textContent = session.limits;
  showForms();
  // The jobs listed before a reload (the language switch reloads the page): listed again, in the new language.
  for (const job of listedJobs()) list(job, false);
}

/** The jobs this tab has listed with a link, oldest first: kept for the tab's life, so a reload keeps them. */
function listedJobs() {
  try {
    return JSON.parse(sessionStorage.getItem('jobs') ?? '[]');
  } catch {
    return [];
  }
}

function showForms() {
  const needKey = session.keyNeeded && !session.allowed;
  $('key-form').hidden = !needKey;
  $('upload-form').hidden = needKey;
}

$('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const response = await fetch('/api/key', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: $('key').value }) });
  if (!response.ok) {
    $('key-error').textContent = (await response.json()).error;
    return;
  }
  session.allowed = true;
  showForms();
});

function choose(files) {
  chosen = [...files];
  $('chosen').textContent = chosen.length ? chosen.map((f) => f.name).join(', ') : '';
}

$('files').addEventListener('change', () => choose($('files').files));
const drop = $('drop');
for (const type of ['dragenter', 'dragover']) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  choose(e.dataTransfer.files);
});
// Dropped next to the box rather than on it: taken too, instead of the browser opening the file.
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  if (e.target === drop || drop.contains(e.target)) return;
  e.preventDefault();
  choose(e.dataTransfer.files);
});

$('upload-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('upload-error').textContent = '';
  if (chosen.length === 0) {
    $('upload-error').textContent = t('web.chooseFirst');
    return;
  }
  const form = new FormData();
  // Options before files: the server reads the upload as it streams, and needs them for each file.
  const options = chosenOptions($('upload-form'));
  for (const [name, value] of Object.entries(options)) form.append(name, value);
  // A job over limits.confirmOver is not queued: the answer asks, and a press sends the file again.
  form.append('ask', 'on');
  const refused = [];
  const sent = [];
  for (const file of chosen) {
    // Not sent at all: the server would stop reading it at the limit anyway.
    if (file.size > session.maxFileBytes) refused.push({ name: file.name, reason: t('reason.fileTooLarge', { bytes: file.size, limit: session.maxFileBytes }) });
    else {
      form.append('file', file, file.name);
      sent.push(file);
    }
  }
  const button = $('enhance');
  button.disabled = true;
  button.textContent = t('web.uploading');
  try {
    let jobs = [];
    if (refused.length < chosen.length) {
      const response = await fetch('/api/jobs', { method: 'POST', body: form });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error ?? t('web.uploadFailed', { status: response.status }));
      jobs = answer.jobs;
    }
    for (const job of refused) list(job);
    // The answers come in the order the files were sent.
    jobs.forEach((job, i) => (job.confirm ? ask(job, sent[i], options) : list(job, true, { file: sent[i], options })));
    choose([]);
    $('files').value = '';
  } catch (error) {
    $('upload-error').textContent = error.message;
  } finally {
    button.disabled = false;
    button.textContent = t('web.enhance');
  }
});

/**
 * A file whose job would take long: the question, a button to run it and one for the faster model. A press sends
 * the file again with that model, without asking, and the line becomes the job's.
 */
function ask(job, file, options) {
  const item = document.createElement('li');
  const name = document.createElement('span');
  name.className = 'job-name';
  name.textContent = job.name;
  const question = document.createElement('span');
  question.className = 'job-state';
  question.textContent = job.confirm.question;
  item.append(name, question);
  for (const choice of [job.confirm.run, job.confirm.other].filter(Boolean)) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'confirm';
    button.textContent = choice.label;
    button.addEventListener('click', async () => {
      for (const b of item.querySelectorAll('button')) b.disabled = true;
      const form = new FormData();
      for (const [key, value] of Object.entries({ ...options, model: choice.model })) form.append(key, value);
      form.append('file', file, file.name);
      try {
        const response = await fetch('/api/jobs', { method: 'POST', body: form });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.error ?? t('web.uploadFailed', { status: response.status }));
        item.remove();
        list(answer.jobs[0]);
      } catch (error) {
        question.textContent = error.message;
        question.className = 'job-state error';
      }
    });
    item.append(button);
  }
  $('jobs').prepend(item);
}

/** One file's line: its name, then a link to its page and its state, or the reason it was refused. */
function list(job, fresh = true, sent = undefined) {
  if (fresh && job.link) sessionStorage.setItem('jobs', JSON.stringify([...listedJobs(), { name: job.name, link: job.link, why: job.why }].slice(-50)));
  const item = document.createElement('li');
  const name = document.createElement('span');
  name.className = 'job-name';
  name.textContent = job.name;
  item.append(name);
  const state = document.createElement('span');
  state.className = job.link ? 'job-state' : 'job-state error';
  item.append(state);
  $('jobs').prepend(item);
  if (!job.link) {
    state.textContent = job.reason;
    return;
  }
  item.dataset.link = job.link;
  const bar = document.createElement('progress');
  bar.max = 1;
  bar.value = 0;
  const open = document.createElement('a');
  open.href = job.link;
  open.textContent = t('web.openJob');
  item.append(bar, open);
  // Where auto chose the model: what and why, said by the server in this page's language, and a button for the
  // other model: it cancels this job and sends the file again with that model.
  if (job.why) {
    const why = document.createElement('span');
    why.className = 'job-why hint';
    why.textContent = job.why;
    item.append(why);
  }
  if (job.other && sent) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'other-model';
    button.textContent = job.other.label;
    button.addEventListener('click', async () => {
      button.disabled = true;
      const [path, query] = job.link.split('?');
      await fetch(`${path}/cancel?${query}`, { method: 'POST' }).catch(() => undefined);
      const form = new FormData();
      for (const [key, value] of Object.entries({ ...sent.options, model: job.other.model })) form.append(key, value);
      form.append('file', sent.file, sent.file.name);
      try {
        const response = await fetch('/api/jobs', { method: 'POST', body: form });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.error ?? t('web.uploadFailed', { status: response.status }));
        list(answer.jobs[0]);
      } catch (error) {
        state.textContent = error.message;
        state.className = 'job-state error';
      }
    });
    item.append(button);
  }
  follow(job.link, (view) => {
    state.textContent = view.text;
    state.className = view.state === 'failed' || view.state === 'cancelled' ? 'job-state error' : 'job-state';
    if (view.total) {
      bar.max = view.total;
      bar.value = view.done;
    }
    if (view.state === 'completed') bar.value = bar.max;
  });
}

load().catch((error) => {
  $('upload-error').textContent = t('web.loadFailed', { message: error.message });
  $('upload-form').hidden = false;
});
