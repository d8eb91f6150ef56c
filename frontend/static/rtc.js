// Candidates can arrive before the description they belong to; keep them
// until it is set.
export function candidateQueue(pc) {
  const early = [];
  return {
    add(c) {
      if (pc.remoteDescription) pc.addIceCandidate(c).catch(() => {});
      else early.push(c);
    },
    async described() {
      while (early.length) await pc.addIceCandidate(early.shift()).catch(() => {});
    },
  };
}

// addCamera sends a camera track: in two layers (simulcast) when the camera
// is big enough to make a thumbnail of, so invigilators' grids get the
// small layer ("l", a quarter of the width at 20 kbit/s, so 30 tiles cost
// about what two full cameras do; no frame rate cap, since Chromium's VP8
// simulcast would apply it to the full layer too) and the
// recording and the opened candidate the full one ("h"); otherwise in one.
// The full layer keeps to cap, the exam's limit for this camera from
// media_config ({max_bitrate, max_framerate}).
export function addCamera(pc, track, stream, cap = {}) {
  const { width = 0, height = 0 } = track.getSettings();
  const full = { maxBitrate: cap.max_bitrate || 300000 };
  const send = (sendEncodings) => pc.addTransceiver(track, { direction: 'sendonly', streams: [stream], sendEncodings }).sender;
  if (Math.min(width, height) < 360) return send([full]);
  return send([{ rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 20000 }, { rid: 'h', ...full }]);
}

// republishOnLoss offers a new connection when this one has failed, or
// was released by the server (a device silent for 30 s), and has not come
// back within 3 s while the socket stays up.
export function republishOnLoss(mine, current, again) {
  mine.addEventListener('connectionstatechange', () => {
    if (!['failed', 'closed', 'disconnected'].includes(mine.connectionState)) return;
    setTimeout(() => {
      if (current() === mine && !['connected', 'connecting', 'new'].includes(mine.connectionState)) again();
    }, 3000);
  });
}
