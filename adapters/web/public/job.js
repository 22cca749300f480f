// A job page: live state from the server's events, the early preview, then the slider, summary and downloads.
import { follow, size } from '/static/common.js';

const $ = (id) => document.getElementById(id);
const path = location.pathname;
const query = location.search.slice(1);
const file = (kind) => `${path}/file/${kind}?${query}`;
let shownResult = false;
let previews = 0;

const stop = follow(`${path}?${query}`, (view) => {
  const s = view.snapshot;
  if (s) {
    $('name').textContent = s.name;
    document.title = `${s.name}: image-enhancer`;
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
    $('status').textContent = view.state === 'failed' ? 'Failed' : 'Cancelled';
  }
  if (view.state === 'completed' && s?.result && !shownResult) {
    shownResult = true;
    showResult(s);
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

function showResult(s) {
  const r = s.result;
  $('early').hidden = true;
  $('progress').hidden = true;
  $('before').src = file('input');
  $('after').src = file('png');
  $('compare').style.setProperty('--full-width', `${r.output.width}px`);
  $('viewport').style.setProperty('--full-width', `${r.output.width}px`);
  const png = $('download-png');
  png.href = file('png');
  png.download = `${stem(s.name)}.enhanced.png`;
  png.textContent = `Download PNG (${r.output.width}x${r.output.height}, ${size(r.outputs?.png ?? 0)})`;
  if (r.outputs?.pdf !== undefined) {
    const pdf = $('download-pdf');
    pdf.href = file('pdf');
    pdf.download = `${stem(s.name)}.pdf`;
    pdf.hidden = false;
  }
  const ms = r.ms;
  const stages = ['wait', 'load', 'decode', 'preview', 'infer', 'encode', 'render', 'total']
    .filter((k) => ms[k] !== undefined)
    .map((k) => `${k} ${(ms[k] / 1000).toFixed(2)} s`)
    .join(', ');
  const rows = [
    ['Input', `${r.input.width}x${r.input.height} ${r.input.format.toUpperCase()}, ${size(s.bytes)}`],
    ['Output', `${r.output.width}x${r.output.height} PNG (${r.options.scale}x), ${size(r.outputs?.png ?? 0)}`],
    ['Model', `${r.options.model} (sha256 ${r.modelSha256.slice(0, 12)}…), ${r.options.tune === 'raw' ? 'raw output' : 'gentle touch-up'}`],
    ['Device', `${r.device}, ${r.precision}, tile ${r.tile || 'whole image'} (${r.tiles} runs)`],
    ['Time', stages + (r.cached ? ' (from the cache)' : '')],
    ['Signature', r.signature],
    ['Job', `${s.id}, kept until ${new Date(s.expires).toLocaleString()}`],
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
  $('status').textContent = 'Done';
  stop();
}

// The slider: the enhanced image is clipped to the right of the handle, the upload shows on the left.
$('slider').addEventListener('input', () => {
  const at = $('slider').value;
  $('after').style.clipPath = `inset(0 0 0 ${at}%)`;
  $('divider').style.left = `${at}%`;
});

$('zoom').addEventListener('click', () => {
  const zoomed = $('viewport').classList.toggle('zoomed');
  $('zoom').setAttribute('aria-pressed', String(zoomed));
  $('zoom').textContent = zoomed ? 'Fit to the page' : 'Zoom to full size';
});
