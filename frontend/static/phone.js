// The phone camera: opened from the QR code on the candidate's PC. It
// films the candidate from behind at 45 degrees, with the microphone off
// (the rules forbid it), keeps the screen awake, and reconnects by itself.
import { loadDictionary, t, bi, h, biEl } from './i18n.js';
import { addCamera, candidateQueue, republishOnLoss } from './rtc.js';
import { socketTarget } from './socket.js';

await loadDictionary();
const $ = (id) => document.getElementById(id);
const status = $('phone-status');
const params = new URLSearchParams(location.search);
const token = params.get('t');
let key = sessionStorage.getItem(`examhall:phone:${token}`);
let stream = null;
let pc = null;
let queue = null;
let videoCap = {}; // the exam's cap on this camera, from media_config
let ws = null;
let backoff = 500;
let refused = 0; // handshakes refused in a row before the link was accepted
let stopped = false;

function say(k, kind = 'notice') {
  bi(status, k);
  status.className = `alert ${kind}`;
}

for (const k of ['phone.check.place', 'phone.check.frame', 'phone.check.charge', 'phone.check.quiet']) {
  $('phone-checklist').append(biEl('li', k));
}

async function camera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment', width: 640, height: 480, frameRate: 15 }, audio: false });
  } catch (e) {
    say(e.name === 'NotAllowedError' ? 'phone.denied' : 'phone.nocamera', 'error');
    return false;
  }
  $('phone-preview').srcObject = stream;
  return true;
}

// The screen must not sleep while filming.
async function keepAwake() {
  try { await navigator.wakeLock?.request('screen'); } catch { /* not offered: the checklist asks for it */ }
}
document.addEventListener('visibilitychange', () => { if (!document.hidden) keepAwake(); });

async function battery() {
  const b = await navigator.getBattery?.().catch(() => null);
  if (!b) return;
  const check = () => {
    const low = b.level < 0.3 && !b.charging;
    $('phone-battery').hidden = !low;
    if (low) bi($('phone-battery'), 'phone.battery', { level: Math.round(b.level * 100) });
  };
  b.addEventListener('levelchange', check);
  b.addEventListener('chargingchange', check);
  check();
}

const target = socketTarget('/ws/phone');

function connect() {
  if (stopped) return;
  const q = key ? `key=${encodeURIComponent(key)}` : `t=${encodeURIComponent(token)}`;
  ws = new WebSocket(target.url(q));
  let opened = false;
  ws.onopen = () => {
    opened = true;
    backoff = 500;
    say('phone.connecting');
    ws.send(JSON.stringify({ type: 'media_config', id: 'mc' }));
  };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (!target.redirected(m)) onMessage(m);
  };
  ws.onclose = () => {
    if (target.now()) return connect(); // to the room's owner
    // A used or expired link is refused at once; a room moving between
    // servers refuses for a moment too, so the link is tried three times.
    if (!opened && !key && ++refused >= 3) {
      // The link was refused (used or expired): say what to do.
      stopped = true;
      say('phone.badlink', 'error');
      return;
    }
    say('phone.reconnecting', 'error');
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
}

function onMessage(m) {
  switch (m.type) {
    case 'paired':
      key = m.device_key;
      sessionStorage.setItem(`examhall:phone:${token}`, key);
      break;
    case 'media_config':
      videoCap = m.video || {};
      publish(m.ice_servers || []);
      break;
    case 'media_answer':
      pc.setRemoteDescription({ type: 'answer', sdp: m.sdp }).then(() => queue.described());
      break;
    case 'media_ice':
      queue?.add(m.candidate);
      break;
    case 'error':
      if (m.code === 'device_revoked') { stopped = true; say('phone.revoked', 'error'); ws.close(); }
      break;
  }
}

async function publish(iceServers) {
  pc?.close();
  pc = new RTCPeerConnection({ iceServers });
  queue = candidateQueue(pc);
  for (const tr of stream.getVideoTracks()) addCamera(pc, tr, stream, videoCap);
  pc.onicecandidate = (e) => { if (e.candidate) ws.send(JSON.stringify({ type: 'media_ice', candidate: e.candidate.toJSON() })); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'connected') say('phone.live', 'ok');
    if (pc.connectionState === 'failed' || pc.connectionState === 'disconnected') say('phone.reconnecting', 'error');
  };
  republishOnLoss(pc, () => pc, () => publish(iceServers));
  const o = await pc.createOffer();
  await pc.setLocalDescription(o);
  ws.send(JSON.stringify({ type: 'media_offer', id: 'mo', sdp: o.sdp }));
}

if (!token) {
  say('phone.badlink', 'error');
} else if (await camera()) {
  keepAwake();
  battery();
  connect();
}
