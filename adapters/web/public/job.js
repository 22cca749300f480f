// A job page: live state from the server's events, the early preview, then the slider, summary and downloads.
import { follow } from '/static/common.js';
import { has, lang, t } from '/static/language.js';

const $ = (id) => document.getElementById(id);
// The job shown: this page's link, then the link of a job enhanced again from it once that one is done.
let path = location.pathname;
let query = location.search.slice(1);
const file = (kind) => `${path}/file/${kind}?${query}`;
let shownResult = false;
let previews = 0;

const stop = follow(`${path}?${query}`, (view) => {
  const s = view.snapshot;
  if (s) {
    $('name').textContent = s.name;
    document.title = t('web.namedTitle', { name: s.name });
  }
  $('status').textContent = view.text;
  const running = view.state === 'waiting' || view.state === 'active';
  $('cancel').hidden = !running;
  const bar = $('progress');
  bar.hidden = !(view.state === 'active' || view.state === 'finishing');
  if (view.total) {
    bar.max = view.total;
    bar.value = view.done;
  }
  if (view.state === 'finishing') bar.value = bar.max;
  const wantPreview = (view.preview ?? 0) + (s?.preview ? 1 : 0);
  if (wantPreview > previews) {
    previews = wantPreview;
    $('early-img').src = `${file('early')}&n=${previews}`;
    $('early').hidden = false;
  }
  if (view.state === 'failed' || view.state === 'cancelled') {
    $('reason').textContent = view.reason;
    $('reason').hidden = false;
    $('status').textContent = t(view.state === 'failed' ? 'web.failed' : 'web.cancelled');
  }
  if (view.state === 'completed' && s?.result && !shownResult) {
    shownResult = true;
    void showResult(s);
  }
});

$('cancel').addEventListener('click', async () => {
  $('cancel').disabled = true;
  const response = await fetch(`${path}/cancel?${query}`, { method: 'POST' });
  if (!response.ok) {
    $('reason').textContent = (await response.json()).error;
    $('reason').hidden = false;
  }
  $('cancel').disabled = false;
});

function stem(name) {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/** `key`'s line, or `fallback` where the catalogue names no such thing (a device added since, say). */
const word = (key, fallback) => (has(key) ? t(key) : fallback);

let models;
/** The service's models (`{ name, label, architecture }`), asked once. */
const modelList = async () => (models ??= (await (await fetch('/api/session')).json()).models);

async function showResult(s) {
  const r = s.result;
  $('early').hidden = true;
  $('progress').hidden = true;
  // Both pictures decoded before either is swapped, so the slider never shows half of an old and a new result.
  const [before, after] = await Promise.all([loaded(file('input')), loaded(file('png'))]);
  $('before').src = before;
  $('after').src = after;
  $('compare').style.setProperty('--full-width', `${r.output.width}px`);
  $('viewport').style.setProperty('--full-width', `${r.output.width}px`);
  const png = $('download-png');
  png.href = file('png');
  png.download = `${stem(s.name)}.enhanced.png`;
  png.textContent = t('web.downloadPngSized', { width: r.output.width, height: r.output.height, size: s.sizes.png });
  if (r.outputs?.pdf !== undefined) {
    const pdf = $('download-pdf');
    pdf.href = file('pdf');
    pdf.download = `${stem(s.name)}.pdf`;
    pdf.hidden = false;
  }
  // The model by its use and its architecture; one no longer offered by its name.
  const model = (await modelList()).find((m) => m.name === r.options.model) ?? { label: r.options.model, architecture: r.options.model };
  const device = { device: word(`web.deviceName.${r.device}`, r.device), precision: word(`web.precisionName.${r.precision}`, r.precision) };
  const ms = r.ms;
  const stages = ['wait', 'load', 'decode', 'preview', 'infer', 'encode', 'render', 'total']
    .filter((k) => ms[k] !== undefined)
    .map((k) => t('web.stageTime', { stage: t(`web.stage.${k}`), seconds: (ms[k] / 1000).toFixed(2) }))
    .join(t('web.separator'));
  const rows = [
    [t('web.rowInput'), t('web.input', { width: r.input.width, height: r.input.height, format: r.input.format.toUpperCase(), size: s.sizes.input })],
    [t('web.rowOutput'), t('web.output', { width: r.output.width, height: r.output.height, scale: r.options.scale, size: s.sizes.png })],
    [t('web.rowModel'), t('web.modelUsed', { label: model.label, architecture: model.architecture, sha: r.modelSha256.slice(0, 12), tune: t(r.options.tune === 'raw' ? 'web.tuneRawShort' : 'web.tuneGentle') })],
    [t('web.rowDevice'), r.tile ? t('web.device', { ...device, count: r.tiles, tile: r.tile }) : t('web.deviceWhole', device)],
    [t('web.rowTime'), stages + (r.cached ? t('web.fromCache') : '')],
    [t('web.rowSignature'), r.signature],
    [t('web.rowJob'), t('web.kept', { id: s.id, date: new Date(s.expires).toLocaleString(lang) })],
  ];
  const dl = $('summary');
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dl.append(dt, dd);
  }
  $('result').hidden = false;
  $('status').textContent = t('web.done');
  stop();
  void offerAgain(s.options);
}

/** Resolves with `url` once the browser has the picture decoded. */
async function loaded(url) {
  const img = new Image();
  img.src = url;
  await img.decode().catch(() => {});
  return url;
}

/** The "Enhance again" form, set to the options of the job shown. */
async function offerAgain(options) {
  const select = $('again-model');
  if (select.options.length === 0) for (const m of await modelList()) select.append(new Option(m.label, m.name));
  select.value = options.model;
  $('again-scale').value = String(options.scale);
  $('again-tune').value = options.tune;
}

// "Enhance again with other options": a new job from the same upload. Its state shows under the button while the
// current result stays on screen; once it is done its result takes the place of this one, and the address
// becomes its link (so a reload, or a link copied now, shows the new result).
$('again-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = $('again');
  const say = (text, error = '') => {
    $('again-status').textContent = text;
    $('again-error').textContent = error;
  };
  button.disabled = true;
  say(t('web.uploading'));
  const body = { model: $('again-model').value, scale: $('again-scale').value, tune: $('again-tune').value, ...($('again-pdf').checked ? { pdf: 'on' } : {}) };
  const response = await fetch(`${path}/again?${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({ error: t('web.serviceAnswered', { status: response.status }) }));
  if (!response.ok) {
    say('', answer.error);
    button.disabled = false;
    return;
  }
  say(t('web.queued'));
  const stopAgain = follow(answer.link, (view) => {
    if (view.state === 'failed' || view.state === 'cancelled') {
      stopAgain();
      say('', view.text);
      button.disabled = false;
    } else if (view.state === 'completed' && view.snapshot?.result) {
      stopAgain();
      say(t('web.loadingNew'));
      [path, query] = answer.link.split('?');
      history.replaceState(null, '', answer.link);
      void showResult(view.snapshot).then(() => {
        say(t('web.newShown'));
        button.disabled = false;
      });
    } else say(view.text);
  });
});

// The slider: the enhanced image is clipped to the right of the handle, the upload shows on the left.
$('slider').addEventListener('input', () => {
  const at = $('slider').value;
  $('after').style.clipPath = `inset(0 0 0 ${at}%)`;
  $('divider').style.left = `${at}%`;
});

$('zoom').addEventListener('click', () => {
  const zoomed = $('viewport').classList.toggle('zoomed');
  $('zoom').setAttribute('aria-pressed', String(zoomed));
  $('zoom').textContent = t(zoomed ? 'web.fit' : 'web.zoom');
});
