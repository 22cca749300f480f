// A job page: live state from the server's events, the early preview, then the slider, summary and downloads.
// Cancel while it runs; once it has ended, whichever way, "Enhance again" from its kept upload.
import { chosenOptions, follow } from '/static/common.js';
import { has, lang, t } from '/static/language.js';

const $ = (id) => document.getElementById(id);
// The job shown: this page's link, then the link of a job enhanced again from it once that one is done.
let path = location.pathname;
let query = location.search.slice(1);
const file = (kind) => `${path}/file/${kind}?${query}`;
/** The result on screen, once there is one. */
let shown;
let previews = 0;
/** The state the page last heard; Cancel's answer is read against it. */
let state = 'waiting';
let cancelling = false;

/** The service's models, asked once: their names by use for the again form, their architecture for the summary. */
let asked;
const models = () => (asked ??= fetch('/api/session').then((r) => r.json()).then((s) => s.models).catch(() => []));

const stop = follow(`${path}?${query}`, (view) => {
  const s = view.snapshot;
  if (s) {
    $('name').textContent = s.name;
    document.title = t('web.namedTitle', { name: s.name });
  }
  state = view.state;
  const running = view.state === 'waiting' || view.state === 'active';
  // Progress keeps coming until the worker has stopped the job: the line says what the person asked for.
  $('status').textContent = cancelling && running ? t('web.cancelling') : view.text;
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
    // A failure in red; a cancel is what someone asked for.
    $('reason').className = view.state === 'failed' ? 'error' : 'hint';
    $('reason').hidden = false;
    $('status').textContent = t(view.state === 'failed' ? 'web.failed' : 'web.cancelled');
    $('progress').hidden = true;
    // Its upload is kept: it can run again, with these options or others.
    if (s) void offerAgain(s);
  }
  if (view.state === 'completed' && s?.result && !shown) void showResult(s);
});

// Cancel says so at once: the server answers only once the queue has the cancel, and the job ends after the
// worker has stopped it (between two tiles), which took about 6 s on a busy machine with nothing on the page.
$('cancel').addEventListener('click', async () => {
  const button = $('cancel');
  cancelling = true;
  button.disabled = true;
  button.textContent = t('web.cancelling');
  $('status').textContent = t('web.cancelling');
  const response = await fetch(`${path}/cancel?${query}`, { method: 'POST' }).catch(() => undefined);
  if (response?.ok) return; // the job's end comes with its events
  cancelling = false;
  button.disabled = false;
  button.textContent = t('web.cancel');
  // Refused because the job ended meanwhile: its state, just heard or about to be, says how.
  if (state !== 'waiting' && state !== 'active') return;
  const answer = response ? await response.json().catch(() => ({})) : {};
  $('reason').textContent = answer.error ?? (response ? t('web.serviceAnswered', { status: response.status }) : t('web.noAnswer'));
  $('reason').className = 'error';
  $('reason').hidden = false;
});

function stem(name) {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/** `key`'s line, or `fallback` where the catalogue names no such thing (a device added since, say). */
const word = (key, fallback) => (has(key) ? t(key) : fallback);

async function showResult(s) {
  const r = s.result;
  // Both pictures decoded before either is swapped, so the slider never shows half of an old and a new result.
  const [before, after, known] = await Promise.all([loaded(file('input')), loaded(file('result')), models()]);
  shown = r;
  for (const id of ['early', 'progress', 'cancel', 'reason']) $(id).hidden = true;
  $('before').src = before;
  $('after').src = after;
  const format = r.format ?? 'png';
  const png = $('download-png');
  png.href = file('result');
  png.download = `${stem(s.name)}.enhanced.${format === 'jpeg' ? 'jpg' : format}`;
  png.textContent = t('web.downloadSized', { format: format.toUpperCase(), width: r.output.width, height: r.output.height, size: s.sizes.result });
  const pdf = $('download-pdf');
  pdf.hidden = r.outputs?.pdf === undefined;
  if (!pdf.hidden) {
    pdf.href = file('pdf');
    pdf.download = `${stem(s.name)}.pdf`;
  }
  const ms = r.ms;
  const stages = ['wait', 'load', 'decode', 'preview', 'infer', 'encode', 'render', 'total']
    .filter((k) => ms[k] !== undefined)
    .map((k) => t('web.stageTime', { stage: t(`web.stage.${k}`), seconds: (ms[k] / 1000).toFixed(2) }))
    .join(t('web.separator'));
  const model = known.find((m) => m.name === r.options.model) ?? { label: r.options.model, architecture: r.options.model };
  const tune = t(r.options.tune === 'raw' ? 'web.tuneRawShort' : 'web.tuneGentle');
  const device = { device: word(`web.deviceName.${r.device}`, r.device), precision: word(`web.precisionName.${r.precision}`, r.precision) };
  const rows = [
    [t('web.rowInput'), t('web.input', { width: r.input.width, height: r.input.height, format: r.input.format.toUpperCase(), size: s.sizes.input })],
    [t('web.rowOutput'), t(r.options.size ? 'web.outputSized' : 'web.output', { width: r.output.width, height: r.output.height, format: format.toUpperCase(), scale: r.options.scale, size: s.sizes.result })],
    [t('web.rowModel'), t('web.modelUsed', { label: model.label, architecture: model.architecture, sha: r.modelSha256.slice(0, 12), tune })],
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
  $('about').hidden = false;
  fit();
  $('status').textContent = t('web.done');
  stop();
  void offerAgain(s);
}

/** Resolves with `url` once the browser has the picture decoded. */
async function loaded(url) {
  const img = new Image();
  img.src = url;
  await img.decode().catch(() => {});
  return url;
}

// ---- The picture's size ----

/** Space left under the downloads, so they do not touch the window's lower edge. */
const MARGIN = 8;
/** The least height the picture gets when the window is too short for it and the controls (a phone on its side). */
const LEAST = 160;

/**
 * Sizes the comparison. "Fit" (the first sight): the whole picture within the window, with the slider and the
 * downloads under it still above the fold, and never larger than one image pixel per screen pixel (a 384 px result
 * was drawn 894 px wide, blurred, and a 480x960 one 894x1788 with its lower half out of sight). "Actual size": one
 * image pixel per screen pixel, that is naturalWidth / devicePixelRatio CSS pixels, scrolled inside the frame,
 * which stays as tall as Fit's room so the slider stays in sight.
 */
function fit() {
  if (!shown) return;
  const viewport = $('viewport');
  const zoomed = $('zoom').getAttribute('aria-pressed') === 'true';
  const dpr = window.devicePixelRatio || 1;
  const full = { width: shown.output.width / dpr, height: shown.output.height / dpr };
  const style = getComputedStyle(viewport);
  const frameX = parseFloat(style.borderLeftWidth) + parseFloat(style.borderRightWidth);
  const frameY = parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth);
  const box = viewport.getBoundingClientRect();
  // What must show under the picture (slider, downloads) is as tall whatever the picture's size.
  const under = $('downloads').getBoundingClientRect().bottom - box.bottom;
  const room = {
    width: $('result').clientWidth - frameX,
    height: Math.max(LEAST, window.innerHeight - (box.top + window.scrollY) - frameY - under - MARGIN),
  };
  if (zoomed) {
    $('compare').style.width = `${full.width}px`;
    viewport.style.maxHeight = `${room.height + frameY}px`;
  } else {
    const scale = Math.min(1, room.width / full.width, room.height / full.height);
    $('compare').style.width = `${Math.floor(full.width * scale)}px`;
    viewport.style.maxHeight = '';
  }
}
window.addEventListener('resize', fit);

$('zoom').addEventListener('click', () => {
  const zoomed = $('zoom').getAttribute('aria-pressed') !== 'true';
  $('zoom').setAttribute('aria-pressed', String(zoomed));
  $('zoom').textContent = t(zoomed ? 'web.fit' : 'web.actualSize');
  fit();
  // At actual size the middle of the picture shows first.
  const viewport = $('viewport');
  viewport.scrollLeft = (viewport.scrollWidth - viewport.clientWidth) / 2;
  viewport.scrollTop = (viewport.scrollHeight - viewport.clientHeight) / 2;
});

// The slider: the enhanced image is clipped to the right of the handle, the upload shows on the left.
$('slider').addEventListener('input', () => {
  const at = $('slider').value;
  $('after').style.clipPath = `inset(0 0 0 ${at}%)`;
  $('divider').style.left = `${at}%`;
});

// ---- Enhance again ----

let listed;
/** The again form, set to every option of the job `s` ran with (the PDF too), and shown. */
async function offerAgain(s) {
  const select = $('again-model');
  await (listed ??= models().then((all) => select.append(...all.map((m) => new Option(m.label, m.name)))));
  // A model no longer offered (taken out of the manifest since) is listed by its name, so the form says what ran.
  if (![...select.options].some((o) => o.value === s.options.model)) select.append(new Option(s.options.model, s.options.model));
  select.value = s.options.model;
  $('again-scale').value = String(s.options.scale);
  // A size the form does not offer (one a script asked for) is listed by its number, so the form says what ran.
  const size = $('again-size');
  const asked = s.options.size === undefined ? '' : String(s.options.size);
  if (![...size.options].some((o) => o.value === asked)) size.append(new Option(`${asked} px`, asked));
  size.value = asked;
  $('again-format').value = s.options.format ?? 'png';
  $('again-tune').value = s.options.tune;
  $('again-pdf').checked = s.report === true;
  $('again-form').hidden = false;
}

// A new job from the same upload. After a result, its state shows under the button while the current result stays
// on screen; once it is done its result takes the place of this one, and the address becomes its link (so a
// reload, or a link copied now, shows the new result). After a job that ended without one, the page goes to the
// new job's own page, with its progress and Cancel.
$('again-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = $('again');
  const say = (text, error = '') => {
    $('again-status').textContent = text;
    $('again-error').textContent = error;
  };
  button.disabled = true;
  say(t('web.uploading'));
  const body = chosenOptions($('again-form'));
  const response = await fetch(`${path}/again?${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).catch(() => undefined);
  const answer = response ? await response.json().catch(() => ({ error: t('web.serviceAnswered', { status: response.status }) })) : { error: t('web.noAnswer') };
  if (!response?.ok) {
    say('', answer.error);
    button.disabled = false;
    return;
  }
  say(t('web.queued'));
  if (!shown) {
    location.assign(answer.link);
    return;
  }
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
