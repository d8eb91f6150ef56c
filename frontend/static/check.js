// The device check: each check passed, warning or failed, with a fix in
// plain words. Runnable any day before the exam and again on exam day; the
// result is stored with the attempt.
import { loadDictionary, t, bi, h, biEl, span, csrfToken } from './i18n.js';

await loadDictionary();
const box = document.getElementById('check');
const attempt = Number(box.dataset.attempt);
const list = document.getElementById('checks');
const results = {};

function row(name) {
  const li = h('li', { 'data-check': name, class: 'pending' }, biEl('strong', `check.${name}`), ' ', h('span', { class: 'verdict' }), h('div', { class: 'fix' }));
  list.append(li);
  return (verdict, fix) => {
    results[name] = verdict;
    li.className = verdict;
    bi(li.querySelector('.verdict'), `check.verdict.${verdict}`);
    if (fix) bi(li.querySelector('.fix'), fix); else li.querySelector('.fix').replaceChildren();
  };
}

const browser = row('browser');
const r = await fetch('/api/device-check/browser').then((x) => x.json());
if (r.browser.problem) browser('failed', r.fix); else browser('passed');

const camera = row('camera');
const mic = row('microphone');
let stream = null;
try {
  stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const preview = document.getElementById('check-preview');
  preview.srcObject = stream;
  camera('passed');
  enrol(preview);
} catch (e) {
  camera('failed', e.name === 'NotAllowedError' ? 'camera.denied' : 'camera.missing');
  mic('failed', e.name === 'NotAllowedError' ? 'camera.denied' : 'camera.missing');
}
if (stream) {
  // A level meter: any sound above the floor within 3 s.
  const ctx = new AudioContext();
  const an = ctx.createAnalyser();
  ctx.createMediaStreamSource(stream).connect(an);
  const buf = new Uint8Array(an.fftSize);
  let peak = 0;
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    an.getByteTimeDomainData(buf);
    for (const v of buf) peak = Math.max(peak, Math.abs(v - 128));
    await new Promise((res) => setTimeout(res, 100));
  }
  if (peak > 2) mic('passed'); else mic('warning', 'check.microphone.quiet');
}

const net = row('network');
const rtts = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  await fetch('/healthz', { cache: 'no-store' });
  rtts.push(performance.now() - t0);
}
rtts.sort((a, b) => a - b);
const blob = new Blob([new Uint8Array(1 << 20)]);
const t0 = performance.now();
await fetch('/api/device-check/upload', { method: 'POST', body: blob, headers: { 'X-CSRF-Token': csrfToken() } });
const kbps = (8 * blob.size) / (performance.now() - t0);
// What both cameras send at the exam's caps (the page's data-need-kbps):
// passed with half as much again to spare, a warning with just enough.
const need = Number(box.dataset.needKbps) || 600;
if (kbps > 1.5 * need && rtts[2] < 300) net('passed');
else if (kbps > need) net('warning', 'check.network.slow');
else net('failed', 'check.network.bad');
box.querySelector('[data-check="network"] .verdict').append(span('hint', ` ${Math.round(rtts[2])} ms, ${Math.round(kbps)} kbit/s`),
  biEl('span', 'check.network.need', { kbps: need }, { class: 'hint', 'data-need': need }));

const screens = row('screens');
if (window.screen.isExtended === true) screens('failed', 'check.screens.many'); else screens('passed');
const fs = row('fullscreen');
if (document.fullscreenEnabled) fs('passed'); else fs('failed', 'check.fullscreen.no');

// A short test publish: the camera reaches the server over WebRTC, or a
// firewall blocks it (then TURN is needed).
const rtc = row('webrtc');
if (await testPublish(stream)) rtc('passed'); else rtc('failed', 'check.webrtc.blocked');

async function testPublish(media) {
  const track = media?.getVideoTracks()[0] || document.createElement('canvas').captureStream(5).getVideoTracks()[0];
  const { ice_servers: iceServers } = await fetch('/api/device-check/webrtc').then((x) => x.json());
  const pc = new RTCPeerConnection({ iceServers });
  try {
    pc.addTransceiver(track, { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((res) => {
      if (pc.iceGatheringState === 'complete') res();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') res(); };
      setTimeout(res, 3000);
    });
    const r = await fetch('/api/device-check/webrtc', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() }, body: JSON.stringify({ sdp: pc.localDescription.sdp }),
    });
    if (!r.ok) return false;
    const probe = await r.json();
    await pc.setRemoteDescription({ type: 'answer', sdp: probe.sdp });
    for (let i = 0; i < 20; i++) {
      await new Promise((res) => setTimeout(res, 500));
      const res = await fetch(`/api/device-check/webrtc/${probe.id}`).then((x) => x.json());
      if (res.packets > 10) return true;
      if (res.state === 'failed' || pc.connectionState === 'failed') return false;
    }
    return false;
  } catch {
    return false;
  } finally {
    pc.close();
  }
}

const verdict = await fetch(`/api/attempts/${attempt}/device-check`, {
  method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() }, body: JSON.stringify({ results }),
}).then((x) => x.json());
const v = document.getElementById('check-verdict');
bi(v, verdict.passed ? 'check.all.passed' : 'check.all.failed');
v.className = `alert ${verdict.passed ? 'ok' : 'error'}`;
v.dataset.passed = String(!!verdict.passed);
if (verdict.passed) v.append(' ', biEl('a', 'check.back', {}, { class: 'button primary', id: 'back-lobby', href: `/exam?attempt=${attempt}` }));

// enrol keeps a frame of the candidate's face: the exam page's face
// analysis compares the candidate with it, and reviewers can see it.
async function enrol(video) {
  try {
    await new Promise((res) => { if (video.readyState >= 2) res(); else video.addEventListener('loadeddata', res, { once: true }); });
    await new Promise((res) => setTimeout(res, 1000)); // let the camera settle its exposure
    const c = new OffscreenCanvas(video.videoWidth, video.videoHeight);
    c.getContext('2d').drawImage(video, 0, 0);
    const blob = await c.convertToBlob({ type: 'image/jpeg', quality: 0.85 });
    await fetch(`/api/attempts/${attempt}/stills?kind=enrol`, { method: 'POST', body: blob, headers: { 'Content-Type': 'image/jpeg', 'X-CSRF-Token': csrfToken() } });
  } catch {
    // optional: without it the exam page learns the face from its first frames
  }
}
