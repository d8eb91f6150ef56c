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
