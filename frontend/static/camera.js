// The PC camera and microphone, published to the media service over WebRTC
// for the invigilator and the recording. Signaling rides on the exam
// socket; after a reconnect the page offers again (an ICE restart).
import { biEl, h } from './i18n.js';
import { addCamera, candidateQueue, republishOnLoss } from './rtc.js';

let stream = null;
let pc = null;
let send = () => false;
let onSignal = () => {};
let iceServers = [];
let videoCap = {}; // the exam's cap on this camera, from media_config
let queue = null;

// startCamera asks for the camera and microphone once and shows a preview.
export async function startCamera(sender, signal, previewBox, banner) {
  send = sender;
  onSignal = signal;
  if (!previewBox.dataset.live) {
    try {
      await cameraStream();
    } catch (e) {
      banner(e.name === 'NotAllowedError' ? 'camera.denied' : 'camera.missing', 'error');
      return;
    }
    for (const t of stream.getTracks()) {
      t.addEventListener('ended', () => onSignal('camera_ended', 'instant'));
      t.addEventListener('mute', () => onSignal('camera_ended', 'instant'));
    }
    const v = h('video', { autoplay: true, muted: true, playsinline: true, class: 'selfview', id: 'selfview' });
    v.srcObject = stream;
    previewBox.dataset.live = '1';
    previewBox.replaceChildren(v, biEl('span', 'camera.recording', {}, { class: 'rec' }));
  }
  send({ type: 'media_config', id: 'mc' });
}

// cameraStream opens the camera and microphone once for the whole page
// (the lobby's identity photo and set-up preview, then the exam).
export async function cameraStream() {
  if (!stream) stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 15 }, audio: true });
  return stream;
}

// onMediaMessage handles the media replies; true if m was one.
export function onMediaMessage(m) {
  switch (m.type) {
    case 'media_config':
      iceServers = m.ice_servers || [];
      videoCap = m.video || {};
      offer();
      return true;
    case 'media_answer':
      pc?.setRemoteDescription({ type: 'answer', sdp: m.sdp }).then(() => queue.described());
      return true;
    case 'media_ice':
      queue?.add(m.candidate);
      return true;
  }
  return false;
}

async function offer() {
  if (!stream) return;
  pc?.close();
  pc = new RTCPeerConnection({ iceServers });
  queue = candidateQueue(pc);
  for (const t of stream.getTracks()) t.kind === 'video' ? addCamera(pc, t, stream, videoCap) : pc.addTrack(t, stream);
  pc.onicecandidate = (e) => { if (e.candidate) send({ type: 'media_ice', candidate: e.candidate.toJSON() }); };
  republishOnLoss(pc, () => pc, offer);
  const o = await pc.createOffer();
  await pc.setLocalDescription(o);
  send({ type: 'media_offer', id: 'mo', sdp: o.sdp });
}
