// Lathe console. Plain JavaScript, no build step and no libraries: the pages are built with the
// DOM API (never innerHTML with data, so no markup from a job or an object can run), charts are
// SVG drawn here. Every action is one call to /console/api/, which the server relays, signed with
// the signed-in keys, to the same API an SDK calls: its answers and its refusals are the API's own.
'use strict';

// ---------- small helpers ----------

const $ = (sel, root) => (root || document).querySelector(sel);

// h builds an element: h('a', {href: '#/x', class: 'b'}, 'text', child...). Strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function fmtTime(t) {
  if (t === undefined || t === null || t === '') return '';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function fmtDuration(sec) {
  if (!isFinite(sec) || sec < 0) return '';
  sec = Math.round(sec);
  const hh = Math.floor(sec / 3600), mm = Math.floor((sec % 3600) / 60), ss = sec % 60;
  return hh ? `${hh}h ${mm}m` : mm ? `${mm}m ${ss}s` : `${ss}s`;
}

function fmtNum(x, digits) {
  if (x === undefined || x === null || x === '') return '';
  if (typeof x !== 'number') return String(x);
  if (Number.isInteger(x)) return x.toLocaleString();
  return x.toPrecision(digits || 4);
}

function fmtBytes(n) {
  if (!isFinite(n)) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

function statusEl(st) { return h('span', {class: 'status ' + (st || '')}, st || ''); }

function alertBox(err) {
  const msg = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err && err.message || err);
  return h('div', {class: 'alert', role: 'alert'}, msg);
}

function parseS3Uri(uri) {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri || '');
  return m ? {bucket: m[1], key: m[2]} : null;
}

// encodeKey escapes an object key for a path, keeping its slashes.
const encodeKey = (key) => key.split('/').map(encodeURIComponent).join('/');
const s3Path = (bucket, key) => '/console/api/s3/' + encodeURIComponent(bucket) + (key !== undefined ? '/' + encodeKey(key) : '');
const downloadUrl = (bucket, key) => s3Path(bucket, key) + '?download=1';

// ---------- the console API ----------

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

let session = null; // {arn, account, csrfToken, region, root, ...}
let perms = {};

async function request(method, url, body, headers) {
  const opts = {method, headers: Object.assign({}, headers || {}), credentials: 'same-origin'};
  if (method !== 'GET' && method !== 'HEAD' && session) opts.headers['X-CSRF-Token'] = session.csrfToken;
  if (body !== undefined) opts.body = body;
  const res = await fetch(url, opts);
  if (!res.ok) {
    let code = String(res.status), message = res.statusText;
    try { const j = await res.json(); code = j.__type || code; message = j.message || j.Message || message; } catch (_) { /* not JSON */ }
    if (res.status === 401 && code === 'NotSignedIn') { signedOut(message); }
    throw new ApiError(res.status, code, message);
  }
  return res;
}

// sm calls a SageMaker operation with a JSON body and returns its JSON answer.
async function sm(op, input) {
  const res = await request('POST', '/console/api/sagemaker/' + op, JSON.stringify(input || {}), {'Content-Type': 'application/json'});
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

async function s3Text(bucket, key) {
  const res = await request('GET', s3Path(bucket, key));
  return res.text();
}

async function s3JSON(bucket, key) { return JSON.parse(await s3Text(bucket, key)); }

async function s3List(bucket, prefix, delimiter) {
  const q = new URLSearchParams({'list-type': '2', prefix: prefix || ''});
  if (delimiter) q.set('delimiter', delimiter);
  const objects = [], prefixes = [];
  let token = '';
  for (let page = 0; page < 50; page++) {
    if (token) q.set('continuation-token', token);
    const res = await request('GET', s3Path(bucket) + '?' + q.toString());
    const doc = new DOMParser().parseFromString(await res.text(), 'application/xml');
    for (const c of doc.getElementsByTagName('Contents')) {
      objects.push({key: tagText(c, 'Key'), size: Number(tagText(c, 'Size')), modified: tagText(c, 'LastModified')});
    }
    for (const p of doc.getElementsByTagName('CommonPrefixes')) prefixes.push(tagText(p, 'Prefix'));
    if (tagText(doc, 'IsTruncated') !== 'true') break;
    token = tagText(doc, 'NextContinuationToken');
  }
  return {objects, prefixes};
}

async function s3Buckets() {
  const res = await request('GET', '/console/api/s3/');
  const doc = new DOMParser().parseFromString(await res.text(), 'application/xml');
  return [...doc.getElementsByTagName('Bucket')].map((b) => ({name: tagText(b, 'Name'), created: tagText(b, 'CreationDate')}));
}

function tagText(el, tag) {
  const t = el.getElementsByTagName(tag)[0];
  return t ? t.textContent : '';
}

// Files from MULTIPART_FROM bytes up go up as a multipart upload in PART_SIZE parts, so a large
// upload is not one request the size of the file, and its progress can be shown part by part.
const PART_SIZE = 8 << 20, MULTIPART_FROM = 16 << 20;

const xmlEscape = (v) => String(v).replace(/[<>&"']/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;'}[c]));

async function s3Put(bucket, key, file, onProgress) {
  const contentType = file.type || 'application/octet-stream';
  if (file.size < MULTIPART_FROM) {
    await request('PUT', s3Path(bucket, key), file, {'Content-Type': contentType});
    if (onProgress) onProgress(file.size, file.size);
    return;
  }
  const created = await request('POST', s3Path(bucket, key) + '?uploads', '', {'Content-Type': contentType});
  const uploadId = tagText(new DOMParser().parseFromString(await created.text(), 'application/xml'), 'UploadId');
  const q = (extra) => s3Path(bucket, key) + '?' + new URLSearchParams(Object.assign(extra, {uploadId})).toString();
  const parts = [];
  try {
    for (let start = 0, n = 1; start < file.size; start += PART_SIZE, n++) {
      const res = await request('PUT', q({partNumber: String(n)}), file.slice(start, start + PART_SIZE));
      parts.push(`<Part><PartNumber>${n}</PartNumber><ETag>${xmlEscape(res.headers.get('ETag'))}</ETag></Part>`);
      if (onProgress) onProgress(Math.min(start + PART_SIZE, file.size), file.size);
    }
    await request('POST', q({}), `<CompleteMultipartUpload>${parts.join('')}</CompleteMultipartUpload>`, {'Content-Type': 'application/xml'});
  } catch (e) {
    await request('DELETE', q({})).catch(() => {}); // abort: the parts would otherwise stay
    throw e;
  }
}

async function s3Delete(bucket, key) { await request('DELETE', s3Path(bucket, key)); }

// ---------- session ----------

function signedOut(message) {
  session = null;
  $('#nav').hidden = true;
  $('#who').hidden = true;
  stopTimers();
  renderSignIn(message);
}

async function loadSession() {
  try {
    const res = await fetch('/console/api/session', {credentials: 'same-origin'});
    if (!res.ok) return false;
    session = await res.json();
  } catch (_) { return false; }
  try { perms = await (await request('GET', '/console/api/permissions')).json(); } catch (_) { perms = {}; }
  $('#nav').hidden = false;
  $('#who').hidden = false;
  $('#who-arn').textContent = session.arn;
  return true;
}

const can = (action) => perms[action] !== false;

function renderSignIn(message) {
  const main = $('#main');
  main.replaceChildren();
  const err = h('div', {'aria-live': 'assertive'});
  if (message) err.append(h('div', {class: 'note', role: 'status'}, message));
  const form = h('form', {class: 'signin', id: 'signin-form'},
    h('h1', {}, 'Sign in to Lathe'),
    h('p', {class: 'hint'}, 'Use an access key: the root key (lathe credentials prints it) or an IAM user\'s. The key stays on the server for this session; the browser keeps only a session cookie.'),
    h('label', {for: 'akid'}, 'Access key ID'),
    h('input', {id: 'akid', name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: 'false'}),
    h('label', {for: 'secret'}, 'Secret access key'),
    h('input', {id: 'secret', name: 'secretAccessKey', type: 'password', autocomplete: 'current-password', required: true}),
    h('label', {for: 'token'}, 'Session token ', h('span', {class: 'hint'}, '(only for temporary STS keys)')),
    h('input', {id: 'token', name: 'sessionToken', type: 'password', autocomplete: 'off'}),
    err,
    h('div', {class: 'actions'}, h('button', {type: 'submit', id: 'signin'}, 'Sign in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    const body = JSON.stringify({accessKeyId: $('#akid').value, secretAccessKey: $('#secret').value, sessionToken: $('#token').value});
    try {
      const res = await fetch('/console/api/session', {method: 'POST', body, headers: {'Content-Type': 'application/json'}, credentials: 'same-origin'});
      if (!res.ok) {
        const j = await res.json().catch(() => ({}));
        throw new ApiError(res.status, j.__type || res.status, j.message || res.statusText);
      }
      $('#secret').value = '';
      await loadSession();
      if (!location.hash || location.hash === '#/') location.hash = '#/jobs';
      route();
    } catch (e) {
      err.append(alertBox(e));
    }
  });
  main.append(form);
  $('#akid').focus();
}

$('#signout').addEventListener('click', async () => {
  try { await request('DELETE', '/console/api/session'); } catch (_) { /* already gone */ }
  signedOut('You have signed out.');
});

// ---------- routing ----------

let timers = [];
function every(ms, fn) {
  let stopped = false, handle = null;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { if (e instanceof ApiError && e.status === 401) return; console.error(e); }
    if (!stopped) handle = setTimeout(tick, ms);
  };
  const t = {stop() { stopped = true; clearTimeout(handle); }};
  timers.push(t);
  tick();
  return t;
}
function stopTimers() { timers.forEach((t) => t.stop()); timers = []; }

const routes = [
  [/^#\/jobs\/new$/, renderCreateJob, 'jobs'],
  [/^#\/jobs\/([^/]+)$/, renderJob, 'jobs'],
  [/^#\/jobs$/, renderJobs, 'jobs'],
  [/^#\/endpoints\/([^/]+)$/, renderEndpoint, 'endpoints'],
  [/^#\/endpoints$/, renderEndpoints, 'endpoints'],
  [/^#\/models$/, renderModels, 'models'],
  [/^#\/buckets\/([^/]+)(?:\/(.*))?$/, renderBucket, 'buckets'],
  [/^#\/buckets$/, renderBuckets, 'buckets'],
];

function route() {
  stopTimers();
  if (!session) { renderSignIn(); return; }
  const hash = location.hash || '#/jobs';
  for (const [re, fn, nav] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const main = $('#main');
    main.replaceChildren();
    Promise.resolve(fn(main, ...m.slice(1).map((x) => x === undefined ? '' : decodeURIComponent(x))))
      .catch((e) => main.append(alertBox(e)));
    main.focus({preventScroll: true});
    return;
  }
  location.hash = '#/jobs';
}

window.addEventListener('hashchange', route);

// ---------- jobs ----------

const describeCache = new Map(); // terminal jobs do not change: describe them once

async function describeJob(name) {
  const cached = describeCache.get(name);
  if (cached) return cached;
  const d = await sm('DescribeAutoMLJobV2', {AutoMLJobName: name});
  if (['Completed', 'Failed', 'Stopped'].includes(d.AutoMLJobStatus)) describeCache.set(name, d);
  return d;
}

function baseModelOf(d) {
  const c = d.AutoMLProblemTypeConfig && d.AutoMLProblemTypeConfig.TextGenerationJobConfig;
  return (c && c.BaseModelName) || '';
}

function progressEl(d) {
  const p = d.TrainingProgress;
  if (d.AutoMLJobStatus === 'Completed') return h('span', {}, '100%');
  if (!p || !p.TotalSteps) return h('span', {class: 'hint'}, p && p.Message ? p.Message : '');
  const pct = Math.round(100 * p.Step / p.TotalSteps);
  return h('span', {}, h('progress', {max: p.TotalSteps, value: p.Step, 'aria-label': `step ${p.Step} of ${p.TotalSteps}`}), ` ${p.Step}/${p.TotalSteps} (${pct}%)`);
}

function durationOf(d) {
  const start = d.CreationTime, end = d.EndTime || (Date.now() / 1000);
  return fmtDuration(end - start);
}

async function renderJobs(main) {
  main.append(h('div', {class: 'actions'}, h('h1', {}, 'Fine-tuning jobs'),
    can('sagemaker:CreateAutoMLJobV2') ? h('a', {class: 'button', href: '#/jobs/new', id: 'new-job'}, 'Create job') :
      h('span', {class: 'hint', id: 'read-only'}, 'Read-only: your policies do not allow sagemaker:CreateAutoMLJobV2.')));
  const body = h('tbody', {id: 'jobs-body'});
  const table = h('div', {class: 'scroll'}, h('table', {id: 'jobs'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Secondary status'),
      h('th', {}, 'Base model'), h('th', {}, 'Progress'), h('th', {class: 'hide-sm'}, 'Created'), h('th', {}, 'Duration'))),
    body));
  const err = h('div', {'aria-live': 'polite'});
  main.append(err, table);
  every(3000, async () => {
    let out;
    try {
      out = await sm('ListAutoMLJobs', {SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 100});
      err.replaceChildren();
    } catch (e) { err.replaceChildren(alertBox(e)); return; }
    const jobs = out.AutoMLJobSummaries || [];
    const details = await Promise.all(jobs.map((j) => describeJob(j.AutoMLJobName).catch(() => j)));
    const rows = details.map((d) => h('tr', {dataset: {job: d.AutoMLJobName}},
      h('td', {}, h('a', {href: '#/jobs/' + encodeURIComponent(d.AutoMLJobName)}, d.AutoMLJobName)),
      h('td', {}, statusEl(d.AutoMLJobStatus)),
      h('td', {}, d.AutoMLJobSecondaryStatus || ''),
      h('td', {}, baseModelOf(d)),
      h('td', {}, progressEl(d)),
      h('td', {class: 'hide-sm'}, fmtTime(d.CreationTime)),
      h('td', {}, durationOf(d))));
    if (!rows.length) rows.push(h('tr', {}, h('td', {colspan: 7, class: 'hint'}, 'No jobs yet.')));
    body.replaceChildren(...rows);
  });
}

let modelList = null;
async function models() {
  if (!modelList) modelList = await (await request('GET', '/console/api/models')).json();
  return modelList;
}

function field(id, label, input, hint) {
  input.id = id;
  return h('div', {}, h('label', {for: id}, label, hint ? h('span', {class: 'hint'}, ' ' + hint) : null), input);
}

// buildJobRequest turns the create form into CreateAutoMLJobV2's request. It leaves validation to
// the API, so the messages the page shows are the API's.
function buildJobRequest(f, uploadUri) {
  const v = (id) => $('#' + id, f).value.trim();
  const contentType = (uri) => /\.parquet$/i.test(uri) ? 'x-application/vnd.amazon+parquet' : 'text/csv;header=present';
  const channel = (type, uri) => ({ChannelType: type, ContentType: contentType(uri), CompressionType: 'None',
    DataSource: {S3DataSource: {S3DataType: 'S3Prefix', S3Uri: uri}}});
  const train = uploadUri || v('train-uri');
  const req = {AutoMLJobName: v('job-name'), AutoMLJobInputDataConfig: [channel('training', train)]};
  if (v('val-uri')) req.AutoMLJobInputDataConfig.push(channel('validation', v('val-uri')));
  req.OutputDataConfig = {S3OutputPath: v('output-path')};
  const tg = {};
  if (v('base-model')) tg.BaseModelName = v('base-model');
  const hp = {};
  for (const k of ['epochCount', 'batchSize', 'learningRate', 'learningRateWarmupSteps']) if (v('hp-' + k)) hp[k] = v('hp-' + k);
  if (Object.keys(hp).length) tg.TextGenerationHyperParameters = hp;
  if ($('#eula', f).checked) tg.ModelAccessConfig = {AcceptEula: true};
  req.AutoMLProblemTypeConfig = {TextGenerationJobConfig: tg};
  if (v('val-fraction') && !v('val-uri')) req.DataSplitConfig = {ValidationFraction: Number(v('val-fraction'))};
  if ($('#deploy', f).checked) {
    req.ModelDeployConfig = v('endpoint-name') ? {EndpointName: v('endpoint-name')} : {AutoGenerateEndpointName: true};
  }
  req.RoleArn = v('role-arn');
  return req;
}

function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

async function renderCreateJob(main) {
  main.append(h('h1', {}, 'Create a fine-tuning job'));
  if (!can('sagemaker:CreateAutoMLJobV2')) main.append(h('div', {class: 'note'}, 'Your policies do not allow sagemaker:CreateAutoMLJobV2: the API will refuse this job.'));
  let list = [];
  try { list = (await models()).models || []; } catch (e) { main.append(alertBox(e)); }
  const eulaOf = Object.fromEntries(list.map((m) => [m.name, m.needsEula]));
  const select = h('select', {}, h('option', {value: ''}, '(the API\'s default)'),
    list.filter((m) => m.runnable).map((m) => h('option', {value: m.name, selected: m.name === 'Stories260K'},
      `${m.name} — ${m.family}, ${m.sizeText}${m.inStore ? ', in store' : ''}${m.needsEula ? ', EULA' : ''}`)));
  const acct = session.account || '000000000000';
  const f = h('form', {id: 'create-job', class: 'grid', novalidate: true},
    h('fieldset', {}, h('legend', {}, 'Job'),
      field('job-name', 'Name', h('input', {required: true, pattern: '[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}', autocomplete: 'off'}), '1-32 letters, digits, hyphens'),
      field('role-arn', 'Role ARN', h('input', {value: `arn:aws:iam::${acct}:role/LatheConsole`})),
      field('output-path', 'Output path (S3OutputPath)', h('input', {placeholder: 's3://bucket/output/'}))),
    h('fieldset', {}, h('legend', {}, 'Data'),
      field('train-uri', 'Training data (S3 prefix or object)', h('input', {placeholder: 's3://bucket/train/'})),
      h('p', {class: 'hint'}, 'Or upload a CSV or Parquet file (columns input, output) into a bucket:'),
      field('upload-bucket', 'Bucket for the upload', h('input', {placeholder: 'bucket'})),
      field('upload-file', 'File', h('input', {type: 'file', accept: '.csv,.parquet,text/csv'})),
      field('val-uri', 'Validation data (optional)', h('input', {placeholder: 's3://bucket/validation/'})),
      field('val-fraction', 'ValidationFraction', h('input', {type: 'number', step: '0.01', min: '0', max: '1', placeholder: '0.2'}), 'without validation data; default 0.2')),
    h('fieldset', {}, h('legend', {}, 'Model and hyperparameters'),
      field('base-model', 'Base model', select),
      h('label', {class: 'inline'}, h('input', {type: 'checkbox', id: 'eula'}), 'I accept the model\'s end-user licence (EULA)'),
      h('p', {class: 'hint', id: 'eula-note', 'aria-live': 'polite'}),
      field('hp-epochCount', 'epochCount', h('input', {type: 'number', min: '1', max: '10'}), '1-10'),
      field('hp-batchSize', 'batchSize', h('input', {type: 'number', min: '1', max: '64'}), '1-64'),
      field('hp-learningRate', 'learningRate', h('input', {type: 'number', step: 'any', min: '0', max: '1'}), '0-1'),
      field('hp-learningRateWarmupSteps', 'learningRateWarmupSteps', h('input', {type: 'number', min: '0', max: '250'}), '0-250')),
    h('fieldset', {}, h('legend', {}, 'Deployment (ModelDeployConfig)'),
      h('label', {class: 'inline'}, h('input', {type: 'checkbox', id: 'deploy'}), 'Deploy an endpoint when training completes'),
      field('endpoint-name', 'Endpoint name', h('input', {placeholder: 'empty: AutoGenerateEndpointName'}))));
  const err = h('div', {'aria-live': 'assertive', id: 'create-errors'});
  const json = h('pre', {id: 'request-json'});
  const cli = h('pre', {id: 'request-cli'});
  const submit = h('button', {type: 'submit', form: 'create-job', id: 'create'}, 'Create job');
  main.append(f, err, h('div', {class: 'actions'}, submit, h('a', {href: '#/jobs', class: 'button secondary'}, 'Cancel')),
    h('h2', {}, 'The request'), h('p', {class: 'hint'}, 'The same job from the AWS CLI (the console sends exactly this):'),
    cli, json,
    h('div', {class: 'actions'}, h('button', {type: 'button', class: 'secondary', onclick: () => navigator.clipboard.writeText(cli.textContent)}, 'Copy command'),
      h('button', {type: 'button', class: 'secondary', onclick: () => navigator.clipboard.writeText(json.textContent)}, 'Copy JSON')));
  const uploadTarget = () => {
    const file = $('#upload-file', f).files[0], bucket = $('#upload-bucket', f).value.trim();
    if (!file || !bucket) return null;
    const name = $('#job-name', f).value.trim() || 'upload';
    return {file, bucket, key: `${name}/train/${file.name}`, uri: `s3://${bucket}/${name}/train/${file.name}`};
  };
  const preview = () => {
    const up = uploadTarget();
    const req = buildJobRequest(f, up && up.uri);
    const text = JSON.stringify(req, null, 2);
    json.textContent = text;
    cli.textContent = `aws sagemaker create-auto-ml-job-v2 --endpoint-url ${location.origin} \\\n  --cli-input-json ${shellQuote(JSON.stringify(req))}`;
  };
  // A model under a licence that must be accepted says so; accepting stays the person's own act.
  const eulaNote = $('#eula-note', f);
  const showEula = () => {
    const needs = !!eulaOf[$('#base-model', f).value];
    eulaNote.textContent = needs ? 'This model\'s licence must be accepted (ModelAccessConfig.AcceptEula).' : '';
  };
  $('#base-model', f).addEventListener('change', showEula);
  showEula();
  f.addEventListener('input', preview);
  f.addEventListener('change', preview);
  preview();
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    submit.disabled = true;
    try {
      const up = uploadTarget();
      if (up) {
        err.append(h('div', {class: 'note', role: 'status'}, `Uploading ${up.file.name} to ${up.uri} …`));
        await s3Put(up.bucket, up.key, up.file);
        $('#train-uri', f).value = up.uri;
        $('#upload-file', f).value = '';
      }
      const req = buildJobRequest(f, up && up.uri);
      await sm('CreateAutoMLJobV2', req);
      location.hash = '#/jobs/' + encodeURIComponent(req.AutoMLJobName);
    } catch (e) {
      err.replaceChildren(alertBox(e));
      submit.disabled = false;
    }
  });
}

// outputPrefix is where a job's artifacts are: S3OutputPath/<job>/.
function outputPrefix(d) {
  const p = parseS3Uri(d.OutputDataConfig && d.OutputDataConfig.S3OutputPath);
  if (!p) return null;
  const key = p.key && !p.key.endsWith('/') ? p.key + '/' : p.key;
  return {bucket: p.bucket, key: key + d.AutoMLJobName + '/'};
}

function parseJSONL(text) {
  return text.split('\n').filter((l) => l.trim()).map((l) => { try { return JSON.parse(l); } catch (_) { return null; } }).filter(Boolean);
}

async function renderJob(main, name) {
  const head = h('div', {});
  const err = h('div', {'aria-live': 'polite'});
  const cards = h('div', {class: 'cards', id: 'job-cards'});
  const timeline = h('ol', {class: 'timeline', id: 'timeline'});
  const chartBox = h('div', {id: 'loss-chart'});
  const metricsBox = h('div', {id: 'metrics'});
  const reportBox = h('div', {id: 'data-report'});
  const samplesBox = h('div', {id: 'samples'});
  const artifactsBox = h('div', {id: 'artifacts'});
  const failure = h('div', {id: 'failure'});
  main.append(head, err, failure, cards,
    h('h2', {}, 'Loss'), chartBox,
    h('h2', {}, 'Status timeline'), timeline,
    h('h2', {}, 'Metrics: base and fine-tuned'), metricsBox,
    h('h2', {}, 'Data report'), reportBox,
    h('h2', {}, 'Samples'), samplesBox,
    h('h2', {}, 'Artifacts'), artifactsBox);
  const seen = []; // status transitions this page has watched
  const live = new Map(); // step -> loss from Describe, for the steps the uploaded log has not reached
  let log = [], loaded = {};
  const loop = every(2500, async () => {
    let d;
    try { d = await sm('DescribeAutoMLJobV2', {AutoMLJobName: name}); err.replaceChildren(); } catch (e) { err.replaceChildren(alertBox(e)); return; }
    const st = `${d.AutoMLJobStatus} / ${d.AutoMLJobSecondaryStatus}`;
    if (!seen.length || seen[seen.length - 1].st !== st) seen.push({st, at: new Date()});
    const terminal = ['Completed', 'Failed', 'Stopped'].includes(d.AutoMLJobStatus);
    const stop = d.AutoMLJobStatus === 'InProgress' && can('sagemaker:StopAutoMLJob') ?
      h('button', {type: 'button', class: 'danger', id: 'stop-job', onclick: async (ev) => {
        ev.target.disabled = true;
        try { await sm('StopAutoMLJob', {AutoMLJobName: name}); } catch (e) { err.replaceChildren(alertBox(e)); ev.target.disabled = false; }
      }}, 'Stop') : null;
    const stEl = statusEl(d.AutoMLJobStatus);
    stEl.id = 'job-status';
    head.replaceChildren(h('div', {class: 'actions'}, h('h1', {}, name), stEl,
      h('span', {id: 'secondary-status'}, d.AutoMLJobSecondaryStatus || ''), stop));
    failure.replaceChildren(d.FailureReason ? h('div', {class: 'alert', role: 'alert', id: 'failure-reason'}, 'FailureReason: ' + d.FailureReason) : '');
    const p = d.TrainingProgress || {};
    if (p.Step && isFinite(p.Loss)) live.set(p.Step, p.Loss);
    const last = log.filter((e) => e.event === 'step').pop() || {};
    cards.replaceChildren(
      card('Base model', baseModelOf(d)),
      card('Progress', p.TotalSteps ? `${p.Step}/${p.TotalSteps}` : (d.AutoMLJobStatus === 'Completed' ? 'done' : (p.Message || p.Phase || ''))),
      card('Training loss', fmtNum(p.Loss !== undefined ? p.Loss : last.loss)),
      card('Learning rate', fmtNum(last.lr)),
      card('Tokens/s', fmtNum(p.TokensPerSecond || last.tokens_per_second, 3)),
      card('ETA', p.EtaSeconds ? fmtDuration(p.EtaSeconds) : ''),
      card('Created', fmtTime(d.CreationTime)),
      card('Duration', durationOf(d)));
    const out = outputPrefix(d);
    if (out) {
      // The log is uploaded at each checkpoint and at the end; Describe's progress fills the gap live.
      if (!loaded.log || !terminal || !loaded.finalLog) {
        try { log = parseJSONL(await s3Text(out.bucket, out.key + 'training-log.jsonl')); loaded.log = true; loaded.finalLog = terminal; } catch (_) { /* not written yet */ }
      }
      drawLoss(chartBox, log, live, p.TotalSteps);
      await loadOnce(loaded, 'metrics', () => s3JSON(out.bucket, out.key + 'metrics.json'), (m) => metricsBox.replaceChildren(metricsTable(m)), terminal);
      await loadOnce(loaded, 'report', () => s3JSON(out.bucket, out.key + 'data-report.json'), (r) => reportBox.replaceChildren(dataReport(r)), terminal);
      await loadOnce(loaded, 'samples', async () => parseJSONL(await s3Text(out.bucket, out.key + 'samples.jsonl')), (x) => samplesBox.replaceChildren(samplesTable(x)), terminal);
      if (!loaded.artifacts || !terminal) {
        try {
          const {objects} = await s3List(out.bucket, out.key);
          artifactsBox.replaceChildren(artifactTable(out.bucket, objects));
          loaded.artifacts = terminal;
        } catch (e) { artifactsBox.replaceChildren(alertBox(e)); }
      }
    }
    if (!loaded.metrics && d.BestCandidate) metricsBox.replaceChildren(candidateMetrics(d.BestCandidate));
    drawTimeline(timeline, d, log, seen);
    if (terminal && loaded.finalLog) loop.stop();
  });
}

async function loadOnce(loaded, key, get, show, terminal) {
  if (loaded[key]) return;
  try { show(await get()); loaded[key] = true; } catch (e) { if (terminal && !(e instanceof ApiError && e.code === 'NoSuchKey')) console.warn(key, e); }
}

function card(k, v) { return h('div', {class: 'card'}, h('div', {class: 'k'}, k), h('div', {class: 'v'}, v === undefined || v === '' ? '—' : v)); }

// drawLoss draws the training loss by step from the log (one point per logged step), the live
// point from Describe when training has gone past the log, the validation loss of the base model
// (at step 0) and of the fine-tuned one (at the last step), and the learning rate on its own scale.
function drawLoss(box, log, liveSteps, totalSteps) {
  const steps = log.filter((e) => e.event === 'step' && isFinite(e.loss));
  const pts = steps.map((e) => ({x: e.step, y: e.loss, lr: e.lr}));
  const lastLogged = pts.length ? pts[pts.length - 1].x : 0;
  const livePts = [...liveSteps].filter(([x]) => x > lastLogged).sort((a, b) => a[0] - b[0]).map(([x, y]) => ({x, y}));
  const evalEv = log.filter((e) => e.event === 'eval').pop();
  const total = (log.find((e) => e.event === 'start' || e.event === 'resumed') || {}).total_steps || totalSteps || 0;
  const vals = [];
  if (evalEv) {
    if (evalEv.base && isFinite(evalEv.base.ValidationLoss)) vals.push({x: 0, y: evalEv.base.ValidationLoss, label: 'base'});
    if (evalEv.fine_tuned && isFinite(evalEv.fine_tuned.ValidationLoss)) vals.push({x: pts.length ? pts[pts.length - 1].x : total, y: evalEv.fine_tuned.ValidationLoss, label: 'fine-tuned'});
  }
  const all = pts.concat(livePts, vals);
  if (!all.length) { box.replaceChildren(h('p', {class: 'hint', id: 'no-curve'}, 'No training steps logged yet.')); return; }
  const W = 800, H = 300, L = 56, R = 56, T = 14, B = 34;
  const xMax = Math.max(total, ...all.map((q) => q.x), 1);
  const yMax = Math.max(...all.map((q) => q.y)) * 1.05 || 1;
  const X = (x) => L + (W - L - R) * x / xMax, Y = (y) => T + (H - T - B) * (1 - y / yMax);
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', id: 'loss-svg',
    'data-points': String(pts.length), 'aria-label': `Training loss over ${pts.length} logged steps` + (vals.length ? ', with validation loss' : '')});
  for (let i = 0; i <= 4; i++) {
    const y = yMax * i / 4;
    svg.append(s('line', {class: 'grid', x1: L, x2: W - R, y1: Y(y), y2: Y(y)}), s('text', {x: L - 6, y: Y(y) + 4, 'text-anchor': 'end'}, fmtNum(y, 3)));
  }
  for (let i = 0; i <= 5; i++) {
    const x = Math.round(xMax * i / 5);
    svg.append(s('text', {x: X(x), y: H - 14, 'text-anchor': 'middle'}, x));
  }
  svg.append(s('line', {class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B}), s('line', {class: 'axis', x1: L, x2: L, y1: T, y2: H - B}),
    s('text', {x: (W) / 2, y: H - 2, 'text-anchor': 'middle'}, 'step'), s('text', {x: 12, y: T + 10}, 'loss'));
  const line = pts.concat(livePts);
  if (line.length) {
    svg.append(s('path', {class: 'train', id: 'train-path', d: line.map((q, i) => (i ? 'L' : 'M') + X(q.x).toFixed(1) + ' ' + Y(q.y).toFixed(1)).join(' ')}));
  }
  const lrs = pts.filter((q) => isFinite(q.lr));
  if (lrs.length > 1) {
    const lrMax = Math.max(...lrs.map((q) => q.lr)) || 1;
    const YL = (v) => T + (H - T - B) * (1 - v / lrMax);
    svg.append(s('path', {class: 'lr', d: lrs.map((q, i) => (i ? 'L' : 'M') + X(q.x).toFixed(1) + ' ' + YL(q.lr).toFixed(1)).join(' ')}),
      s('text', {x: W - R + 6, y: T + 10}, 'lr ' + fmtNum(lrMax, 2)), s('text', {x: W - R + 6, y: H - B}, '0'));
  }
  for (const v of vals) {
    svg.append(s('circle', {class: 'val', cx: X(v.x), cy: Y(v.y), r: 5}, s('title', {}, `validation loss (${v.label}): ${fmtNum(v.y)}`)));
  }
  box.replaceChildren(svg, h('div', {class: 'legend'},
    h('span', {}, h('span', {class: 'swatch train'}), `training loss (${pts.length} logged steps${livePts.length ? `, ${livePts.length} seen live` : ''})`),
    h('span', {}, h('span', {class: 'swatch val'}), 'validation loss: base at step 0, fine-tuned at the end'),
    h('span', {}, h('span', {class: 'swatch lr'}), 'learning rate (right scale)')));
}

const metricNames = ['TrainingLoss', 'ValidationLoss', 'Perplexity', 'Rouge1', 'Rouge2', 'RougeL', 'RougeLSum'];

function metricsTable(m) {
  const better = (k, b, t) => (k.startsWith('Rouge') ? t > b : t < b);
  return h('div', {class: 'scroll'}, h('table', {id: 'metrics-table'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Metric'), h('th', {class: 'num'}, 'Base ' + (m.base_model || '')), h('th', {class: 'num'}, 'Fine-tuned'), h('th', {class: 'num'}, 'Change'))),
    h('tbody', {}, metricNames.map((k) => {
      const b = m.base ? m.base[k] : undefined, t = m.fine_tuned ? m.fine_tuned[k] : undefined;
      const change = isFinite(b) && isFinite(t) && b !== 0 ? ((t - b) / Math.abs(b) * 100).toFixed(1) + '%' : '';
      return h('tr', {}, h('th', {scope: 'row'}, k), h('td', {class: 'num'}, fmtNum(b)), h('td', {class: 'num'}, fmtNum(t)),
        h('td', {class: 'num'}, change ? (better(k, b, t) ? '▲ ' : '▼ ') + change : ''));
    }))),
  m.train_seconds ? h('p', {class: 'hint'}, `Training took ${fmtDuration(m.train_seconds)}.`) : null);
}

function candidateMetrics(c) {
  const ms = (c.CandidateProperties && c.CandidateProperties.CandidateMetrics) || [];
  return h('table', {}, h('tbody', {}, ms.map((m) => h('tr', {}, h('th', {scope: 'row'}, m.MetricName), h('td', {class: 'num'}, fmtNum(m.Value))))));
}

function dataReport(r) {
  const split = (name, x) => x ? h('tr', {}, h('th', {scope: 'row'}, name), h('td', {class: 'num'}, fmtNum(x.rows)),
    h('td', {class: 'num'}, fmtNum(x.totalTokens)), h('td', {class: 'num'}, fmtNum(x.meanLength, 4)), h('td', {class: 'num'}, fmtNum(x.maxLength)),
    h('td', {class: 'num'}, fmtNum(x.truncatedRows)), h('td', {class: 'num'}, fmtNum(x.droppedTokens))) : null;
  const hist = (r.training && r.training.lengthHistogram) || [];
  const maxRows = Math.max(1, ...hist.map((b) => b.rows));
  return h('div', {},
    h('div', {class: 'cards'}, card('Training rows', fmtNum(r.training_rows)), card('Validation rows', fmtNum(r.validation_rows)),
      card('Validation fraction', r.validation_fraction ? fmtNum(r.validation_fraction) : 'separate channel'),
      card('Context length', fmtNum(r.training && r.training.contextLength))),
    h('div', {class: 'scroll'}, h('table', {id: 'report-table'}, h('thead', {}, h('tr', {}, h('th', {}, 'Split'), h('th', {class: 'num'}, 'Rows'), h('th', {class: 'num'}, 'Tokens'),
      h('th', {class: 'num'}, 'Mean length'), h('th', {class: 'num'}, 'Longest'), h('th', {class: 'num'}, 'Truncated rows'), h('th', {class: 'num'}, 'Dropped tokens'))),
    h('tbody', {}, split('training', r.training), split('validation', r.validation)))),
    h('h3', {}, 'Token lengths (training)'),
    h('table', {}, h('tbody', {}, hist.map((b) => h('tr', {}, h('th', {scope: 'row'}, b.to ? `${b.from}–${b.to}` : `${b.from}+`),
      h('td', {class: 'num'}, fmtNum(b.rows)), h('td', {}, h('span', {class: 'bar', dataset: {w: b.rows}}))))))
  ,
    h('p', {class: 'hint'}, 'Files: ', Object.entries(r.files || {}).map(([f, n]) => `${f} (${n} rows)`).join(', ')),
    r.prompt_template ? h('details', {}, h('summary', {}, 'Prompt template'), h('pre', {}, r.prompt_template)) : null,
    (r.problems && r.problems.length) ? h('div', {class: 'alert'}, r.problems.map((p) => `${p.file} row ${p.row}: ${p.problem || p.message}`).join('\n')) : null,
    widthBars(maxRows));
}

// widthBars sizes the histogram bars after they are in the page (CSP forbids inline style markup;
// setting the CSSOM from script is allowed).
function widthBars(maxRows) {
  queueMicrotask(() => document.querySelectorAll('.bar[data-w]').forEach((b) => { b.style.width = (200 * Number(b.dataset.w) / maxRows) + 'px'; }));
  return null;
}

function samplesTable(xs) {
  const hasBase = xs.some((x) => x.base_generation !== undefined);
  return h('div', {class: 'scroll'}, h('table', {id: 'samples-table'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Prompt'), h('th', {}, 'Reference'), hasBase ? h('th', {}, 'Base model') : null, h('th', {}, 'Fine-tuned'))),
    h('tbody', {}, xs.slice(0, 20).map((x) => h('tr', {}, h('td', {}, x.input), h('td', {}, x.reference),
      hasBase ? h('td', {}, x.base_generation) : null, h('td', {}, x.generation))))),
  xs.length > 20 ? h('p', {class: 'hint'}, `First 20 of ${xs.length} samples.`) : null);
}

function artifactTable(bucket, objects) {
  if (!objects.length) return h('p', {class: 'hint'}, 'No artifacts yet.');
  return h('div', {class: 'scroll'}, h('table', {id: 'artifacts-table'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Object'), h('th', {class: 'num'}, 'Size'))),
    h('tbody', {}, objects.map((o) => h('tr', {}, h('td', {}, h('a', {href: downloadUrl(bucket, o.key)}, `s3://${bucket}/${o.key}`)), h('td', {class: 'num'}, fmtBytes(o.size)))))));
}

function drawTimeline(ol, d, log, seen) {
  const items = [{at: d.CreationTime * 1000, text: 'Created'}];
  for (const e of log) {
    const at = Date.parse(e.time);
    if (e.event === 'start') items.push({at, text: `Training started: ${e.total_steps} steps, ${e.examples} examples`});
    else if (e.event === 'resumed') items.push({at, text: `Resumed at step ${e.step}`});
    else if (e.event === 'checkpoint') items.push({at, text: `Checkpoint at step ${e.step}`});
    else if (e.event === 'stopped') items.push({at, text: `Stopped at step ${e.step}: ${e.reason}`});
    else if (e.event === 'eval') items.push({at, text: 'Evaluated the fine-tuned model'});
    else if (e.event === 'done') items.push({at, text: 'Artifacts written'});
  }
  for (const x of seen) items.push({at: x.at.getTime(), text: 'Seen: ' + x.st});
  if (d.EndTime) items.push({at: d.EndTime * 1000, text: 'Ended: ' + d.AutoMLJobStatus});
  items.sort((a, b) => a.at - b.at);
  ol.replaceChildren(...items.map((i) => h('li', {}, h('time', {datetime: new Date(i.at).toISOString()}, new Date(i.at).toLocaleTimeString()), ' ', i.text)));
}

// ---------- endpoints ----------

async function renderEndpoints(main) {
  main.append(h('h1', {}, 'Endpoints'));
  const err = h('div', {'aria-live': 'polite'});
  const body = h('tbody', {});
  main.append(err, h('div', {class: 'scroll'}, h('table', {id: 'endpoints'}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'),
    h('th', {class: 'hide-sm'}, 'Created'), h('th', {}, 'Actions'))), body)));
  every(4000, async () => {
    let out;
    try { out = await sm('ListEndpoints', {SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 100}); err.replaceChildren(); } catch (e) { err.replaceChildren(alertBox(e)); return; }
    const eps = out.Endpoints || [];
    body.replaceChildren(...eps.map((e) => h('tr', {}, h('td', {}, h('a', {href: '#/endpoints/' + encodeURIComponent(e.EndpointName)}, e.EndpointName)),
      h('td', {}, statusEl(e.EndpointStatus)), h('td', {class: 'hide-sm'}, fmtTime(e.CreationTime)),
      h('td', {}, can('sagemaker:DeleteEndpoint') ? h('button', {type: 'button', class: 'danger', onclick: async () => {
        if (!confirm(`Delete endpoint ${e.EndpointName}?`)) return;
        try { await sm('DeleteEndpoint', {EndpointName: e.EndpointName}); } catch (x) { err.replaceChildren(alertBox(x)); }
      }}, 'Delete') : ''))));
    if (!eps.length) body.append(h('tr', {}, h('td', {colspan: 4, class: 'hint'}, 'No endpoints. A job with ModelDeployConfig creates one.')));
  });
}

async function renderEndpoint(main, name) {
  const head = h('div', {});
  main.append(head);
  const refresh = async () => {
    const d = await sm('DescribeEndpoint', {EndpointName: name});
    head.replaceChildren();
    append(head, [h('div', {class: 'actions'}, h('h1', {}, name), statusEl(d.EndpointStatus)),
      d.FailureReason ? h('div', {class: 'alert', role: 'alert'}, 'FailureReason: ' + d.FailureReason) : null]);
    return d;
  };
  const t = every(4000, async () => { const d = await refresh(); if (d.EndpointStatus === 'InService') t.stop(); });
  const out = h('pre', {class: 'output', id: 'playground-output', 'aria-live': 'polite'});
  const err = h('div', {'aria-live': 'assertive'});
  const stats = h('p', {class: 'hint', id: 'playground-stats'});
  const f = h('form', {id: 'playground', class: 'grid'},
    h('div', {}, field('prompt', 'Prompt', h('textarea', {rows: 4}, 'Write a story about a cat named Tom.'))),
    h('fieldset', {}, h('legend', {}, 'Parameters'),
      field('max-new-tokens', 'max_new_tokens', h('input', {type: 'number', min: '1', value: '64'})),
      field('temperature', 'temperature', h('input', {type: 'number', step: '0.05', min: '0', value: '0.7'}), '0: greedy'),
      field('top-p', 'top_p', h('input', {type: 'number', step: '0.05', min: '0', max: '1', value: '0.9'}))));
  const go = h('button', {type: 'submit', form: 'playground', id: 'generate', disabled: !can('sagemaker:InvokeEndpoint')}, 'Generate');
  const snippets = h('div', {});
  main.append(h('h2', {}, 'Playground'), f, h('div', {class: 'actions'}, go), err, out, stats, h('h2', {}, 'The same call from code'), snippets);
  const payload = () => {
    const temperature = Number($('#temperature', f).value);
    const params = {max_new_tokens: Number($('#max-new-tokens', f).value)};
    if (temperature > 0) Object.assign(params, {do_sample: true, temperature, top_p: Number($('#top-p', f).value)});
    return {inputs: $('#prompt', f).value, parameters: params};
  };
  const showSnippets = () => {
    const p = payload();
    const oai = {model: name, messages: [{role: 'user', content: p.inputs}], max_tokens: p.parameters.max_new_tokens, stream: true};
    if (p.parameters.temperature) Object.assign(oai, {temperature: p.parameters.temperature, top_p: p.parameters.top_p});
    snippets.replaceChildren(
      h('p', {class: 'hint'}, 'curl, the OpenAI chat route (bearer key: OPENAI_API_KEY, printed by lathe serve on its first start):'),
      h('pre', {id: 'snippet-curl'}, `curl -N ${location.origin}/v1/chat/completions \\\n  -H "Authorization: Bearer $OPENAI_API_KEY" -H 'Content-Type: application/json' \\\n  -d ${shellQuote(JSON.stringify(oai))}`),
      h('p', {class: 'hint'}, 'boto3, InvokeEndpointWithResponseStream:'),
      h('pre', {id: 'snippet-boto3'}, [
        'import boto3, json',
        `rt = boto3.client("sagemaker-runtime", endpoint_url="${location.origin}", region_name="${session.region}")`,
        `resp = rt.invoke_endpoint_with_response_stream(EndpointName=${JSON.stringify(name)}, ContentType="application/json",`,
        `    Body=json.dumps(${JSON.stringify(p)}))`,
        'for event in resp["Body"]:',
        '    print(event["PayloadPart"]["Bytes"].decode(), end="")'].join('\n')));
  };
  f.addEventListener('input', showSnippets);
  showSnippets();
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    out.textContent = '';
    stats.textContent = '';
    go.disabled = true;
    const started = performance.now();
    let tokens = 0;
    try {
      const res = await request('POST', '/console/api/invoke/' + encodeURIComponent(name), JSON.stringify(payload()), {'Content-Type': 'application/json'});
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += dec.decode(value, {stream: true});
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const isError = /^event: error/m.test(event);
          const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
          if (!data) continue;
          const j = JSON.parse(data);
          if (isError) throw new ApiError(500, j.__type, j.message);
          if (j.token && !j.token.special) { out.append(j.token.text); tokens++; }
        }
        stats.textContent = `${tokens} tokens, ${((performance.now() - started) / 1000).toFixed(1)} s`;
      }
      out.dataset.done = 'true';
    } catch (e) {
      err.replaceChildren(alertBox(e));
    } finally {
      go.disabled = !can('sagemaker:InvokeEndpoint');
    }
  });
}

// ---------- models ----------

async function renderModels(main) {
  main.append(h('h1', {}, 'Base models'),
    h('p', {class: 'hint'}, 'The catalog (the names a job may give as BaseModelName) and the models in this server\'s store. ',
      session.root ? 'Pull a catalog model from the Hugging Face hub, or import a GGUF file from a bucket.' :
        'Only the account\'s root can pull or import models (the model store has no IAM actions yet).'));
  const err = h('div', {'aria-live': 'assertive', id: 'models-errors'});
  main.append(err);
  if (session.root) {
    const uri = h('input', {id: 'import-uri', placeholder: 's3://bucket/models/model.gguf'});
    const name = h('input', {id: 'import-name', placeholder: 'MyModel'});
    main.append(h('form', {id: 'import-form', class: 'grid', onsubmit: async (ev) => {
      ev.preventDefault();
      err.replaceChildren();
      try {
        await request('POST', '/console/api/models/import', JSON.stringify({s3Uri: uri.value.trim(), name: name.value.trim()}), {'Content-Type': 'application/json'});
        modelList = null;
      } catch (e) { err.replaceChildren(alertBox(e)); }
    }}, h('fieldset', {}, h('legend', {}, 'Import a GGUF file from a bucket'),
      h('label', {for: 'import-uri'}, 'S3 URI'), uri, h('label', {for: 'import-name'}, 'Name in the store'), name,
      h('div', {class: 'actions'}, h('button', {type: 'submit', id: 'import'}, 'Import')))));
  }
  const body = h('tbody', {});
  main.append(h('div', {class: 'scroll'}, h('table', {id: 'models-table'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Family'), h('th', {class: 'num'}, 'Size'), h('th', {}, 'EULA'),
      h('th', {}, 'In store'), h('th', {}, 'Can'), h('th', {class: 'hide-sm'}, 'Source'))), body)));
  const pull = async (name) => {
    err.replaceChildren();
    try { await request('POST', '/console/api/models/pull', JSON.stringify({name}), {'Content-Type': 'application/json'}); } catch (e) { err.replaceChildren(alertBox(e)); }
  };
  const storeCell = (x) => {
    const t = x.transfer;
    if (t && t.state === 'running') {
      return t.total ? h('span', {}, h('progress', {max: t.total, value: t.done, 'aria-label': `${t.kind} ${x.name}`}), ` ${fmtBytes(t.done)} of ${fmtBytes(t.total)}`) :
        h('span', {}, `${t.kind === 'pull' ? 'pulling' : 'importing'} …`);
    }
    const failed = t && t.state === 'failed' ? h('div', {class: 'alert'}, `${t.kind} failed: ${t.error}`) : null;
    if (x.inStore) return h('span', {}, 'yes', failed);
    if (session.root && x.runnable && x.source.startsWith('huggingface.co/')) {
      return h('span', {}, h('button', {type: 'button', class: 'secondary', dataset: {pull: x.name}, onclick: () => pull(x.name)}, 'Pull'), failed);
    }
    return h('span', {}, 'no', failed);
  };
  every(2000, async () => {
    modelList = null;
    const m = await models();
    body.replaceChildren(...(m.models || []).map((x) => h('tr', {dataset: {model: x.name}}, h('td', {}, x.name), h('td', {}, x.family), h('td', {class: 'num'}, x.sizeText),
      h('td', {}, x.needsEula ? 'required' : ''), h('td', {class: 'store'}, storeCell(x)), h('td', {}, x.runnable ? 'fine-tune, serve' : (x.why || 'no')),
      h('td', {class: 'hide-sm'}, x.source || ''))));
  });
}

// ---------- buckets ----------

async function renderBuckets(main) {
  main.append(h('h1', {}, 'Buckets'));
  const list = await s3Buckets();
  const err = h('div', {'aria-live': 'assertive'});
  const nameIn = h('input', {id: 'new-bucket', placeholder: 'new-bucket-name', 'aria-label': 'New bucket name'});
  append(main, [err, can('s3:CreateBucket') ? h('form', {class: 'actions', id: 'create-bucket', onsubmit: async (ev) => {
    ev.preventDefault();
    try { await request('PUT', s3Path(nameIn.value.trim()) + '/'); route(); } catch (e) { err.replaceChildren(alertBox(e)); }
  }}, nameIn, h('button', {type: 'submit'}, 'Create bucket')) : null,
  h('table', {id: 'buckets'}, h('thead', {}, h('tr', {}, h('th', {}, 'Bucket'), h('th', {}, 'Created'))),
    h('tbody', {}, list.map((b) => h('tr', {}, h('td', {}, h('a', {href: '#/buckets/' + encodeURIComponent(b.name) + '/'}, b.name)), h('td', {}, fmtTime(b.created))))))]);
}

async function renderBucket(main, bucket, prefix) {
  const crumbs = [h('a', {href: '#/buckets'}, 'Buckets'), ' / ', h('a', {href: `#/buckets/${encodeURIComponent(bucket)}/`}, bucket)];
  let acc = '';
  for (const part of prefix.split('/').filter(Boolean)) {
    acc += part + '/';
    crumbs.push(' / ', h('a', {href: `#/buckets/${encodeURIComponent(bucket)}/${encodeURIComponent(acc)}`}, part));
  }
  main.append(h('h1', {}, crumbs));
  const err = h('div', {'aria-live': 'assertive'});
  const fileIn = h('input', {type: 'file', id: 'upload', multiple: true});
  main.append(err);
  if (can('s3:PutObject')) {
    main.append(h('form', {class: 'actions', id: 'upload-form', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        for (const file of fileIn.files) {
          const note = h('div', {class: 'note', role: 'status'});
          err.replaceChildren(note);
          await s3Put(bucket, prefix + file.name, file, (done, total) => {
            note.textContent = `Uploading ${file.name}: ${fmtBytes(done)} of ${fmtBytes(total)} (${Math.round(100 * done / total)}%)`;
          });
        }
        route();
      } catch (e) { err.replaceChildren(alertBox(e)); }
    }}, h('label', {for: 'upload'}, 'Upload to ' + (prefix || '/')), fileIn, h('button', {type: 'submit'}, 'Upload')));
  }
  const {objects, prefixes} = await s3List(bucket, prefix, '/');
  const rows = prefixes.map((p) => h('tr', {}, h('td', {}, h('a', {href: `#/buckets/${encodeURIComponent(bucket)}/${encodeURIComponent(p)}`}, p.slice(prefix.length))), h('td', {}), h('td', {}), h('td', {})));
  for (const o of objects) {
    rows.push(h('tr', {}, h('td', {}, o.key.slice(prefix.length)), h('td', {class: 'num'}, fmtBytes(o.size)), h('td', {class: 'hide-sm'}, fmtTime(o.modified)),
      h('td', {}, h('a', {href: downloadUrl(bucket, o.key)}, 'Download'), ' ',
        can('s3:DeleteObject') ? h('button', {type: 'button', class: 'link', onclick: async () => {
          if (!confirm(`Delete s3://${bucket}/${o.key}?`)) return;
          try { await s3Delete(bucket, o.key); route(); } catch (e) { err.replaceChildren(alertBox(e)); }
        }}, 'Delete') : '')));
  }
  if (!rows.length) rows.push(h('tr', {}, h('td', {colspan: 4, class: 'hint'}, 'Empty.')));
  main.append(h('div', {class: 'scroll'}, h('table', {id: 'objects'}, h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', {class: 'num'}, 'Size'),
    h('th', {class: 'hide-sm'}, 'Modified'), h('th', {}, 'Actions'))), h('tbody', {}, rows))));
}

// ---------- start ----------

(async () => {
  if (await loadSession()) route(); else renderSignIn();
})();
