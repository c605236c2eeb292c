/*
 * penchant tracker: records what the server cannot see (clicks, searches, form
 * submissions, in-page navigation) and posts it to the beacon endpoint in
 * batches. Configured by the data-* attributes of its own script tag:
 *
 *   <script defer src="/personalization/tracker.js"
 *           data-endpoint="/personalization/track-interaction"
 *           data-token="..." [data-off="1"] [data-webdriver="1"]></script>
 *
 * The server records the page view of the page itself; this script never sends it.
 * It sets no cookie and keeps nothing in storage. Rebuild the committed bundle
 * with `npm ci && npm run build` in this folder.
 */
((w, d) => {
  const nav = navigator;
  const loc = location;
  const stub = w.penchant;
  const attrs = (d.currentScript || {}).dataset || {};
  // Quiet period before a burst is sent, and the batch size that is sent at once.
  const WAIT = 300;
  const MAX = 20;
  // Stay under the server's default 8 KB body cap; larger batches are split.
  const MAX_BODY = 7000;

  // Loaded twice on one page: the first copy already listens.
  if (stub && stub.track && !stub.q) return;

  if (
    attrs.off == 1 ||
    !attrs.endpoint ||
    nav.globalPrivacyControl ||
    (nav.webdriver && attrs.webdriver != 1)
  ) {
    // Keep penchant.track callable so that the page's own calls never throw.
    w.penchant = { track() {} };
    return;
  }

  const endpoint = attrs.endpoint;
  const token = attrs.token;
  let queue = [];
  let timer = 0;
  let path = loc.pathname;

  // 32 lowercase hex characters, so that a replayed batch is stored once.
  const eventId = () =>
    Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      (b | 256).toString(16).slice(1),
    ).join("");

  const send = (events, hide, retried) => {
    try {
      const body = JSON.stringify({ token, events });
      if (events.length > 1 && new Blob([body]).size > MAX_BODY) {
        send(events.splice(0, events.length >> 1), hide);
        send(events, hide);
        return;
      }
      // sendBeacon survives the page going away; it cannot report failure, so
      // fetch (kept alive past unload) is used otherwise and when it refuses.
      if (!(hide && nav.sendBeacon && nav.sendBeacon(endpoint, body))) {
        fetch(endpoint, { method: "POST", body, keepalive: true })
          .then((response) => {
            if (response.status > 499) throw 0;
          })
          // One more try for a failed batch, never more.
          .catch(() => retried || setTimeout(send, 2000, events, 0, 1));
      }
    } catch (e) {}
  };

  const flush = (hide) => {
    clearTimeout(timer);
    timer = 0;
    // A prerendered page sends nothing until the visitor actually opens it.
    if (queue.length && !d.prerendering) send(queue.splice(0), hide);
  };

  const track = (interaction, target, id, metadata) => {
    queue.push({
      interaction_type: interaction,
      target_type: target,
      // parseInt gives NaN for a missing id, which JSON writes as null.
      target_id: parseInt(id, 10),
      event_id: eventId(),
      path: loc.pathname,
      metadata: metadata || {},
    });
    clearTimeout(timer);
    // The timer exists only while events wait: nothing runs while the visitor is idle.
    if (queue.length < MAX) timer = setTimeout(flush, WAIT);
    else flush();
  };

  const view = () => track("view", "page");

  const moved = () => {
    if (loc.pathname != path) {
      path = loc.pathname;
      view();
    }
  };

  const listen = (target, type, handler) => target.addEventListener(type, handler, true);

  listen(d, "click", (event) => {
    const el = event.target.closest && event.target.closest("[data-penchant-type][data-penchant-id]");
    if (!el || el.tagName == "FORM") return;
    const data = el.dataset;
    const id = parseInt(data.penchantId, 10);
    // Repeated identical clicks within the window count once.
    if (
      queue.some(
        (e) =>
          e.interaction_type == "click" && e.target_type == data.penchantType && e.target_id === id,
      )
    )
      return;
    track(
      "click",
      data.penchantType,
      id,
      data.penchantSource && {
        source: data.penchantSource,
        position: parseInt(data.penchantPosition, 10),
        list: data.penchantList,
      },
    );
  });

  listen(d, "submit", (event) => {
    const form = event.target;
    const data = form.dataset;
    if (data.penchantSearch != null) {
      const field =
        form.elements[data.penchantSearch || "q"] || form.querySelector("[type=search]") || {};
      const query = (field.value || "").trim().slice(0, 100);
      if (query) track("search", "category", null, { query });
    } else if (data.penchantForm != null) {
      // Which form it was, never what was typed in it.
      track(
        "form_submit",
        data.penchantType || "page",
        data.penchantId,
        data.penchantForm && { form: data.penchantForm },
      );
    }
  });

  // Single-page apps: a new path is a view (a replaceState to the same path is not).
  for (const name of ["pushState", "replaceState"]) {
    const original = history[name];
    history[name] = function () {
      const result = original.apply(this, arguments);
      moved();
      return result;
    };
  }
  listen(w, "popstate", moved);
  // A page restored from the back/forward cache never reached the server.
  listen(w, "pageshow", (event) => {
    if (event.persisted) {
      path = loc.pathname;
      view();
    }
  });
  listen(w, "pagehide", () => flush(1));
  listen(d, "visibilitychange", () => d.visibilityState == "hidden" && flush(1));
  listen(d, "prerenderingchange", () => flush());

  w.penchant = { track };
  // Calls made before the script loaded: the stub queued their arguments.
  for (const args of (stub && stub.q) || []) track(...args);
})(window, document);
