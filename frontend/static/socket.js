// Where a device's socket goes in a cluster. A node that does not own the
// device's exam room answers with one message, {"type": "redirect", "url"},
// and closes: the next connection goes to that URL. Any later connection
// starts again from this page's own server, which sends it on to the room's
// owner of that moment (after a failover, a new one). docs/protocol.md,
// "Rooms and nodes".
export function socketTarget(path) {
  let next = null;
  let hops = 0;
  return {
    // url is where to connect now, with the page's query.
    url(query) {
      const u = next || `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}?${query}`;
      next = null;
      return u;
    },
    // redirected takes a redirect message (true) and says the next
    // connection goes there; after three in a row the page backs off as
    // after any failure.
    redirected(m) {
      if (m.type !== 'redirect') {
        hops = 0;
        return false;
      }
      if (++hops <= 3 && /^wss?:\/\//.test(m.url)) next = m.url;
      return true;
    },
    // now says whether the next connection may start without waiting.
    now() { return next !== null; },
  };
}
