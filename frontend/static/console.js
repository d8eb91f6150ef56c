// The invigilator's console: their candidates as a grid sorted by live risk,
// a feed of new flags, and one candidate opened large with their flag
// history and the actions (message, formal warning, confirm or dismiss a
// flag, end the attempt). Every action is audited by the server.
import { candidateQueue } from './rtc.js';
import { loadDictionary, t, bi, h, biEl, span, csrfToken, fmtTime } from './i18n.js';
import { api } from './api.js';
import { stillsOf } from './stills.js';
import { socketTarget } from './socket.js';

await loadDictionary();
const root = document.getElementById('console');
const state = { room: null, view: null, readiness: {}, offset: 0, sort: 'risk', open: null, ws: null, backoff: 500, alerts: new Set() };


function errorBox(e) {
  const m = e.error ? e.error.message : { zh: String(e), en: '' };
  return h('div', { class: 'alert error', role: 'alert' }, `${m.zh} `, span('en', m.en), e.error?.detail ? h('div', { class: 'hint' }, e.error.detail) : '');
}

// ---- layout -------------------------------------------------------------------

const roomSelect = h('select', { id: 'room', onchange: () => openRoom(Number(roomSelect.value)) });
const sortSelect = h('select', { id: 'sort', onchange: () => { state.sort = sortSelect.value; renderGrid(); } },
  h('option', { value: 'risk' }, `${t('console.sort.risk').zh} ${t('console.sort.risk').en}`),
  h('option', { value: 'seat' }, `${t('console.sort.seat').zh} ${t('console.sort.seat').en}`));
const grid = h('div', { class: 'tiles', id: 'tiles' });
const feed = h('ol', { class: 'feed', id: 'feed' });
const detail = h('section', { class: 'detail', id: 'detail', hidden: true });
const pre = h('section', { class: 'prebox', id: 'pre', hidden: true });
const status = h('span', { class: 'conn', id: 'conn' });
const refused = h('div', { id: 'sock-error', role: 'alert', hidden: true });

root.append(
  h('div', { class: 'console-top' }, label('console.room', roomSelect), label('console.sort', sortSelect), status),
  refused,
  h('div', { class: 'console-body' }, h('div', {}, pre, grid, detail), h('aside', { class: 'feedbox' }, biEl('h3', 'console.feed'), feed)));

function label(key, el) { return h('label', { class: 'inline' }, biEl('span', key), ' ', el); }

// ---- the room socket ------------------------------------------------------------

async function start() {
  try {
    const { rooms } = await api('GET', '/api/proctor/rooms');
    if (!rooms.length) { root.append(biEl('p', 'console.norooms', {}, { class: 'alert notice' })); return; }
    roomSelect.replaceChildren(...rooms.map((r) => h('option', { value: r.room_id }, `${r.session_title} · ${r.room_name}`)));
    const want = Number(new URLSearchParams(location.search).get('room')) || rooms[0].room_id;
    roomSelect.value = String(want);
    openRoom(want);
  } catch (e) { root.append(errorBox(e)); }
}

// focusVideo asks for the open candidate's cameras at full quality (the
// rest stay thumbnails).
function focusVideo() {
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: 'view_focus', attempt_id: state.open || 0 }));
}

function openRoom(room) {
  state.room = room;
  state.open = null;
  detail.hidden = true;
  feed.replaceChildren();
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  connect();
}

const target = socketTarget('/ws/console');

function connect() {
  const ws = new WebSocket(target.url(`room=${state.room}`));
  state.ws = ws;
  ws.onopen = () => {
    state.backoff = 500;
    bi(status, 'console.live');
    status.className = 'conn ok';
    ws.send(JSON.stringify({ type: 'view', id: 'view' }));
    focusVideo();
  };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (!target.redirected(m)) onMessage(m);
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    bi(status, 'console.reconnecting'); status.className = 'conn bad';
    setTimeout(connect, target.now() ? 0 : state.backoff);
    state.backoff = Math.min(state.backoff * 2, 10000);
  };
}

// ---- live video: one connection receives every camera of the room ---------------

const streams = new Map(); // "a<attempt>-<device>" → MediaStream
const videos = new Map(); // stream id → the grid's <video>, moved between renders
let viewPC = null;
let viewQueue = null;
let viewChain = Promise.resolve();
let lastRestart = 0;

function onView(m) {
  if (m.type === 'view_ready') {
    viewPC?.close();
    viewPC = new RTCPeerConnection({ iceServers: m.ice_servers || [] });
    viewQueue = candidateQueue(viewPC);
    viewPC.onicecandidate = (e) => { if (e.candidate) state.ws?.send(JSON.stringify({ type: 'view_ice', candidate: e.candidate.toJSON() })); };
    viewPC.ontrack = (e) => {
      const id = e.streams[0]?.id;
      if (!id) return;
      // Each change makes a new stream, so a video element that played a
      // camera before it left plays it again when it returns.
      streams.set(id, new MediaStream([...(streams.get(id)?.getTracks() || []).filter((t) => t.kind !== e.track.kind), e.track]));
      const gone = () => {
        const now = streams.get(id);
        if (!now?.getTracks().includes(e.track)) return;
        streams.set(id, new MediaStream(now.getTracks().filter((t) => t !== e.track)));
        renderGrid();
        renderBigCams();
      };
      e.track.onended = gone;
      // A camera that left is taken out of its stream by the server's next
      // offer: its tile says so instead of freezing on the last picture.
      const remote = e.streams[0];
      remote.addEventListener('removetrack', (ev) => { if (ev.track === e.track) gone(); });
      renderGrid();
      renderBigCams();
    };
    return true;
  }
  if (m.type === 'view_offer') {
    // Offers are answered one at a time, in order: the server sends the
    // next only after this answer, and a slow answer never crosses it.
    const pc = viewPC;
    viewChain = viewChain.then(async () => {
      await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      await viewQueue.described();
      const a = await pc.createAnswer();
      await pc.setLocalDescription(a);
      if (pc === viewPC) state.ws?.send(JSON.stringify({ type: 'view_answer', sdp: a.sdp }));
    }).catch((e) => {
      console.warn('view offer', e);
      showRefused({ zh: t('console.videofail').zh, en: t('console.videofail').en });
      // Start the video connection afresh, at most every 5 s.
      if (pc === viewPC && Date.now() - lastRestart > 5000) {
        lastRestart = Date.now();
        state.ws?.send(JSON.stringify({ type: 'view', id: 'view' }));
      }
    });
    return true;
  }
  if (m.type === 'view_ice') {
    viewQueue?.add(m.candidate);
    return true;
  }
  return false;
}

// camBox shows a candidate's camera, or says why there is none.
function camBox(attempt, device, big) {
  const id = `a${attempt}-${device}`;
  const ms = streams.get(id);
  const label = device === 'pc' ? 'console.cam.pc' : 'console.cam.phone';
  if (!ms || !ms.getVideoTracks().length) return biEl('div', label, {}, { class: 'cam' });
  let v;
  if (big) {
    v = h('video', { autoplay: true, playsinline: true, class: 'cam live', 'data-stream': id });
    v.muted = device !== 'pc'; // the open candidate's microphone is heard
  } else {
    v = videos.get(id) || h('video', { autoplay: true, playsinline: true, class: 'cam live', 'data-stream': id });
    v.muted = true;
    videos.set(id, v);
  }
  if (v.srcObject !== ms) v.srcObject = ms;
  // A video taken out of the page (its camera had left) was paused.
  if (v.paused) v.play().catch(() => {});
  return v;
}

// showRefused makes a refused message visible: the invigilator is told
// what failed and what to do, and the log keeps the server's words.
function showRefused(text, detail) {
  refused.hidden = false;
  refused.className = 'alert error';
  refused.replaceChildren(document.createTextNode(`${text.zh} `), span('en', text.en), detail ? h('div', { class: 'hint' }, detail) : '');
}

function onMessage(m) {
  if (onView(m)) return;
  if (m.type === 'error') {
    console.warn('console socket error', m);
    const tx = t('console.refused', { type: m.for || m.id || m.code });
    showRefused(tx, `${m.message?.zh || ''} ${m.message?.en || ''} ${m.detail || ''}`.trim());
    return;
  }
  if (m.type === 'room') {
    state.view = m.room;
    state.readiness = m.readiness || {};
    state.offset = new Date(m.room.server_now).getTime() - Date.now();
    renderGrid();
    renderPre();
  } else if (m.type === 'flag') {
    onFlag(m.flag, m.new);
  } else if (m.type === 'activity') {
    const c = cand(m.activity.attempt_id);
    if (m.activity.type === 'presence' && c) { c.connected = m.activity.connected; renderGrid(); }
    if (m.activity.type === 'message_ack') {
      acked.set(m.activity.message_id, m.activity.at);
      showAck(m.activity.message_id);
    }
  }
}

const cand = (id) => state.view?.candidates.find((c) => c.attempt_id === id);

// Acknowledgements may arrive before the sent message is on screen.
const acked = new Map();
function showAck(id) {
  const li = detail.querySelector(`[data-message="${id}"]`);
  if (li && acked.has(id)) bi(li.querySelector('.ackstate'), 'console.acked', { time: fmtTime(acked.get(id)) });
}

function onFlag(f, isNew) {
  const c = cand(f.attempt_id);
  if (!c) return;
  if (isNew && f.status === 'open') {
    c.open_flags[f.severity] = (c.open_flags[f.severity] || 0) + 1;
    c.risk += { critical: 10, warning: 3, info: 1 }[f.severity] || 0;
  }
  if (f.severity === 'critical' && f.status === 'open') state.alerts.add(f.attempt_id);
  const li = h('li', { class: `sev-${f.severity}`, 'data-flag': f.id, onclick: () => openCandidate(f.attempt_id) },
    h('time', {}, new Date(f.last_at).toLocaleTimeString('zh-CN', { hour12: false })), ' ',
    h('strong', {}, c.name), ' ', f.reason.zh, ' ', span('en', f.reason.en));
  feed.querySelector(`[data-flag="${f.id}"]`)?.remove();
  feed.prepend(li);
  while (feed.children.length > 100) feed.lastChild.remove();
  renderGrid();
  if (state.open === f.attempt_id) loadFlags();
}

// ---- the grid ------------------------------------------------------------------

function left(c) {
  if (!c.deadline || c.status !== 'in_progress') return '';
  const s = Math.max(0, Math.floor((new Date(c.deadline).getTime() - (Date.now() + state.offset)) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// Tiles keep their element across renders (only their insides change), so
// a click or a playing video is never lost to a refresh.
const tiles = new Map();

function renderGrid() {
  if (!state.view) return;
  const cs = [...state.view.candidates].sort((a, b) => (state.sort === 'risk' ? b.risk - a.risk : 0) || a.seat_no - b.seat_no);
  const keep = new Set();
  cs.forEach((c, i) => {
    keep.add(c.attempt_id);
    let tile = tiles.get(c.attempt_id);
    if (!tile) {
      tile = h('button', { type: 'button', 'data-attempt': c.attempt_id, onclick: () => openCandidate(c.attempt_id) });
      tiles.set(c.attempt_id, tile);
    }
    tile.className = `tile${state.alerts.has(c.attempt_id) ? ' alert-critical' : ''}${state.open === c.attempt_id ? ' open' : ''}`;
    const badges = ['critical', 'warning', 'info'].filter((s) => c.open_flags[s]).map((s) => h('span', { class: `badge sev-${s}` }, String(c.open_flags[s])));
    tile.replaceChildren(
      h('div', { class: 'cams' }, camBox(c.attempt_id, 'pc'), camBox(c.attempt_id, 'phone')),
      h('div', { class: 'who' }, h('strong', {}, c.name), h('span', { class: 'mono' }, ` ${c.ticket}`), h('span', { class: 'hint' }, ` #${c.seat_no}`)),
      h('div', { class: 'line' }, h('span', { class: `dot ${c.connected ? 'on' : 'off'}` }), biEl('span', c.connected ? 'console.online' : 'console.offline'),
        ' · ', biEl('span', `status.${c.status}`)),
      h('div', { class: 'line' }, biEl('span', 'console.progress', { n: c.answered, total: c.questions }), c.status === 'in_progress' ? ` · ${left(c)}` : ''),
      h('div', { class: 'line' }, ...badges, c.warnings ? biEl('span', 'console.warnings', { n: c.warnings }, { class: 'badge warn-count' }) : ''));
    // Move it only when its place changed: a moved node is a new node to
    // assistive tools (and to a click in flight).
    if (grid.children[i] !== tile) grid.insertBefore(tile, grid.children[i] || null);
  });
  for (const [id, tile] of tiles) if (!keep.has(id)) { tile.remove(); tiles.delete(id); }
}
setInterval(renderGrid, 5000); // keeps the time left moving between snapshots

// ---- before the exam ----------------------------------------------------------

const steps = ['device_check', 'rules', 'identity', 'phone', 'setup'];
const preMsg = h('div', { id: 'pre-msg', role: 'status' });

// preState sorts a candidate who has not started into ready, getting ready,
// absent, admitted or refused.
function preState(c) {
  const r = state.readiness[c.attempt_id];
  if (!r) return 'absent';
  if (r.state === 'admitted' || r.state === 'refused' || r.state === 'ready') return r.state;
  return c.connected || Object.keys(r.done).length ? 'waiting' : 'absent';
}

const photo = (id, r) => (r?.registered_photo
  ? h('img', { class: 'still', src: `/api/proctor/attempts/${id}/photo`, alt: t('console.pre.photo').zh })
  : biEl('span', 'console.pre.nophoto', {}, { class: 'hint' }));

const still = (id, r) => (r?.identity
  ? h('img', { class: 'still', src: `/api/proctor/attempts/${id}/identity?v=${r.identity.sha256.slice(0, 12)}`, alt: t('console.pre.identity').zh })
  : biEl('span', 'console.pre.noidentity', {}, { class: 'hint' }));

// renderPre shows the candidates who have not started: their steps, their
// identity photo beside their registered name, their device check, and
// the admission buttons; with counts and "admit everyone ready".
function renderPre() {
  const waiting = state.view.candidates.filter((c) => c.status === 'not_started');
  pre.hidden = waiting.length === 0;
  if (pre.hidden) return;
  const counts = { ready: 0, waiting: 0, absent: 0, admitted: 0, refused: 0 };
  const rows = waiting.sort((a, b) => a.seat_no - b.seat_no).map((c) => {
    const r = state.readiness[c.attempt_id];
    const st = preState(c);
    counts[st]++;
    const bad = Object.entries(r?.device || {}).filter(([, v]) => v !== 'passed');
    return h('tr', { 'data-pre': c.attempt_id, class: `pre-${st}` },
      h('td', {}, `#${c.seat_no}`),
      h('td', {}, photo(c.attempt_id, r), h('div', {}, h('strong', {}, c.name)), h('div', { class: 'mono' }, c.ticket)),
      h('td', {}, still(c.attempt_id, r)),
      h('td', { class: 'steps' }, ...steps.map((s) => h('span', { class: r?.done[s] ? 'step done' : 'step', title: `${t(`journey.step.${s}`).zh} ${t(`journey.step.${s}`).en}` }, r?.done[s] ? '✓' : '·'))),
      h('td', {}, r?.done.device_check ? (bad.length ? bad.map(([k, v]) => `${t(`check.${k}`).zh}: ${t(`check.verdict.${v}`).zh}`).join('；') : biEl('span', 'check.verdict.passed')) : '—'),
      h('td', {}, biEl('span', `console.pre.${st}`, {}, { class: `badge pre-${st}` }), r?.refused ? h('div', { class: 'hint' }, r.refused) : ''),
      h('td', {}, st === 'ready' ? biEl('button', 'console.admit', {}, { type: 'button', class: 'primary', 'data-admit': c.attempt_id, onclick: async () => {
        try { await api('POST', `/api/proctor/attempts/${c.attempt_id}/admit`, { force: false }); preMsg.replaceChildren(biEl('div', 'console.admitted', {}, { class: 'alert notice' })); }
        catch (e) { preMsg.replaceChildren(errorBox(e)); }
      } }) : '', ' ', biEl('button', 'console.open', {}, { type: 'button', onclick: () => openCandidate(c.attempt_id) })));
  });
  pre.replaceChildren(
    h('div', { class: 'pre-head' }, biEl('h3', 'console.pre.title'),
      h('span', { id: 'pre-counts' }, ...['ready', 'waiting', 'absent', 'admitted', 'refused'].map((k) => h('span', { class: `badge pre-${k}`, 'data-count': k }, `${t(`console.pre.${k}`).zh} ${counts[k]}`))),
      biEl('button', 'console.pre.admit_ready', {}, { type: 'button', class: 'primary', id: 'admit-ready', disabled: counts.ready === 0, onclick: async () => {
        try {
          const { admitted } = await api('POST', `/api/proctor/rooms/${state.room}/admit-ready`, {});
          preMsg.replaceChildren(biEl('div', 'console.pre.admitted_n', { n: admitted }, { class: 'alert notice' }));
        } catch (e) { preMsg.replaceChildren(errorBox(e)); }
      } })),
    preMsg,
    h('table', { class: 'pretable' },
      h('tr', {}, h('th', {}, '#'), biEl('th', 'console.pre.registered'), biEl('th', 'console.pre.identity'), biEl('th', 'console.pre.steps'), biEl('th', 'console.pre.device'), h('th'), h('th')),
      ...rows));
}

// ---- one candidate -------------------------------------------------------------

function openCandidate(id) {
  state.open = id;
  focusVideo();
  state.alerts.delete(id);
  renderGrid();
  detail.hidden = false;
  renderDetailHead();
  loadFlags();
}

// renderBigCams refreshes only the open candidate's cameras, leaving what
// the invigilator is typing alone.
function renderBigCams() {
  const box = detail.querySelector('#bigcams');
  if (!box || !state.open) return;
  const [pc, phone] = box.querySelectorAll('video, .cam');
  const want = (dev) => streams.get(`a${state.open}-${dev}`)?.getVideoTracks().length > 0;
  const has = (el) => el && el.tagName === 'VIDEO';
  const stale = (el, dev) => has(el) && el.srcObject !== streams.get(`a${state.open}-${dev}`);
  if (want('pc') !== has(pc) || want('phone') !== has(phone) || stale(pc, 'pc') || stale(phone, 'phone')) {
    box.replaceChildren(camBox(state.open, 'pc', true), camBox(state.open, 'phone', true));
  }
}

function renderDetailHead() {
  const c = cand(state.open);
  if (!c) return;
  const msgBody = h('textarea', { id: 'msg-body', rows: 2, maxlength: 500 });
  const result = h('div', { id: 'action-result' });
  const act = (kind) => async () => {
    try {
      const body = msgBody.value.trim();
      const r = await api('POST', `/api/proctor/attempts/${c.attempt_id}/${kind}s`, { body });
      msgBody.value = '';
      result.replaceChildren(h('ul', { class: 'sent' }, h('li', { 'data-message': r.id }, biEl('span', `console.sent.${kind}`), ` ${body} · `, biEl('span', 'console.waiting', {}, { class: 'ackstate' }))));
      showAck(r.id);
    } catch (e) { result.replaceChildren(errorBox(e)); }
  };
  const reason = h('input', { id: 'end-reason', maxlength: 500 });
  // Before the exam: admit or refuse (the session's mode decides whether
  // admission is needed).
  const admitReason = h('input', { id: 'refuse-reason', maxlength: 500 });
  const admitMsg = h('div');
  const admit = (force) => async () => {
    try {
      await api('POST', `/api/proctor/attempts/${c.attempt_id}/admit`, { force });
      admitMsg.replaceChildren(biEl('div', 'console.admitted', {}, { class: 'alert notice' }));
    } catch (e) {
      admitMsg.replaceChildren(errorBox(e));
      if (e.error?.code === 'not_ready') admitMsg.append(biEl('button', 'console.admit.force', {}, { type: 'button', id: 'admit-force', onclick: admit(true) }));
    }
  };
  const admission = c.status !== 'not_started' ? '' : h('div', { class: 'actions' },
    biEl('button', 'console.admit', {}, { type: 'button', id: 'admit', class: 'primary', onclick: admit(false) }),
    label('console.refuse.reason', admitReason),
    biEl('button', 'console.refuse', {}, { type: 'button', id: 'refuse', onclick: async () => {
      try { await api('POST', `/api/proctor/attempts/${c.attempt_id}/refuse`, { reason: admitReason.value }); admitMsg.replaceChildren(biEl('div', 'console.refused', {}, { class: 'alert notice' })); }
      catch (e) { admitMsg.replaceChildren(errorBox(e)); }
    } }),
    admitMsg);
  detail.replaceChildren(
    h('div', { class: 'detail-head' }, h('h2', {}, c.name, h('span', { class: 'mono' }, ` ${c.ticket}`)),
      biEl('button', 'console.close', {}, { type: 'button', id: 'detail-close', onclick: () => { state.open = null; focusVideo(); detail.hidden = true; renderGrid(); } })),
    h('div', { class: 'cams big', id: 'bigcams' }, camBox(c.attempt_id, 'pc', true), camBox(c.attempt_id, 'phone', true)),
    c.status === 'not_started' ? h('div', { class: 'idcheck' },
      h('figure', {}, photo(c.attempt_id, state.readiness[c.attempt_id]), biEl('figcaption', 'console.pre.photo')),
      h('figure', {}, still(c.attempt_id, state.readiness[c.attempt_id]), biEl('figcaption', 'console.pre.identity'))) : '',
    admission,
    h('div', { class: 'actions' },
      label('console.message', msgBody),
      biEl('button', 'console.send.message', {}, { type: 'button', id: 'send-message', onclick: act('message') }),
      biEl('button', 'console.send.warning', {}, { type: 'button', id: 'send-warning', class: 'warnbtn', onclick: act('warning') }),
      biEl('button', 'console.clearlogin', {}, { type: 'button', id: 'clear-login', onclick: async () => {
        try { await api('POST', `/api/proctor/attempts/${c.attempt_id}/clear-login-delay`); result.replaceChildren(biEl('div', 'console.clearlogin.done', {}, { class: 'alert notice' })); }
        catch (e) { result.replaceChildren(errorBox(e)); }
      } }),
      result),
    h('div', { class: 'actions end' }, label('console.end.reason', reason),
      biEl('button', 'console.end', {}, { type: 'button', id: 'end-attempt', class: 'primary danger', onclick: async () => {
        if (!reason.value.trim()) { result.replaceChildren(biEl('div', 'console.end.need', {}, { class: 'alert error' })); return; }
        if (!confirm(`${t('console.end.confirm').zh}\n${t('console.end.confirm').en}`)) return;
        try { await api('POST', `/api/proctor/attempts/${c.attempt_id}/terminate`, { reason: reason.value }); result.replaceChildren(biEl('div', 'console.ended', {}, { class: 'alert notice' })); }
        catch (e) { result.replaceChildren(errorBox(e)); }
      } })),
    biEl('h3', 'console.history'), h('ol', { class: 'history', id: 'history' }));
}

async function loadFlags() {
  const id = state.open;
  try {
    const { flags } = await api('GET', `/api/proctor/attempts/${id}/flags`);
    const list = detail.querySelector('#history');
    if (!list || state.open !== id) return;
    list.replaceChildren(...flags.map((f) => {
      const note = h('input', { placeholder: `${t('console.note').zh} ${t('console.note').en}`, maxlength: 1000 });
      const decide = (d) => async () => { try { await api('POST', `/api/proctor/flags/${f.id}/decision`, { decision: d, note: note.value }); loadFlags(); } catch (e) { list.prepend(errorBox(e)); } };
      return h('li', { class: `sev-${f.severity}`, 'data-flag': f.id },
        h('div', {}, h('time', {}, new Date(f.first_at).toLocaleTimeString('zh-CN', { hour12: false })), ' ', biEl('strong', `severity.${f.severity}`), ' ', f.reason.zh, ' ', span('en', f.reason.en)),
        stillsOf(f),
        f.status === 'open'
          ? h('div', { class: 'decide' }, note, biEl('button', 'console.confirm', {}, { type: 'button', onclick: decide('confirm') }), biEl('button', 'console.dismiss', {}, { type: 'button', onclick: decide('dismiss') }))
          : h('div', { class: 'hint' }, biEl('span', `flagstatus.${f.status}`), f.note ? ` · ${f.note}` : ''));
    }));
  } catch (e) { detail.append(errorBox(e)); }
}

start();
