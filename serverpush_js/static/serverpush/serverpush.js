/*!
 * serverpush.js: browser client of serverpush (see docs/protocol.md).
 * Needs the vendored Socket.IO client (window.io) loaded before it.
 * Plain ES2017, no build step.
 */
(function () {
  'use strict';

  var RETRY_MIN = 500;    // first manual retry waits 500-1500 ms (jittered)
  var RETRY_MAX = 10000;  // matches reconnectionDelayMax of socket.io's own retries
  // Codes after which only a fresh page helps, and refusals of the connect that
  // reconnecting cannot help: REFRESH_CODES and FATAL_CONNECT_CODES of serverpush/protocol.py.
  var REFRESH_CODES = {session_revoked: 1, log_gap: 1, log_restarted: 1, token_expired: 1, session_mismatch: 1};
  var FATAL_CODES = {bad_payload: 1, token_invalid: 1, too_many_subscriptions: 1, log_mismatch: 1};

  // currentScript only exists while this file is being executed, so it is read now;
  // the attribute fallback covers async/deferred loaders that leave it null.
  var script = document.currentScript || document.querySelector('script[data-serverpush]');

  var api = window.serverpush = {
    state: 'connecting',  // 'connecting' | 'live' | 'disconnected' | 'refused'
    cursor: null,
    pageCursor: null,     // the cursor of the first connect (the page's), for watch.js
    token: null,          // the page token, for ws.js
    url: null,            // the push server's URL this page connects to
    socket: null,
    received: 0,          // number of `serverpush` events applied
    healed: 0,            // times the server sent the current state instead of a replay
    refreshed: null,      // {code, message, reload, delay} once serverpush_refresh has fired
    connect: connect,
    refreshCodes: REFRESH_CODES,  // for watch.js
    reload: function () { location.reload(); },  // how a refresh reloads; a page may replace it
    _handle: handle       // test hook: the very function the socket listeners call
  };

  var stopped = false;    // refused / refreshed: never reconnect again
  var retries = 0;        // consecutive manual retries, for the backoff
  var retryTimer = null;
  var unreachableLogged = false;

  // Dispatches `type` on document for jQuery handlers and native listeners alike.
  // jQuery's trigger() passes extra arguments (data, meta) but never reaches
  // addEventListener listeners; a native CustomEvent reaches both, but jQuery handlers
  // would then get it without the extra arguments, and a second time. So: trigger for
  // jQuery, then dispatch natively while jQuery.event.triggered names this type, which
  // makes jQuery's own native listener ignore the event (jQuery does the same itself).
  // Returns false if a handler of a cancelable event called preventDefault().
  function fire(type, data, meta, cancelable) {
    var jq = window.jQuery;
    var prevented = false;
    if (jq && jq.event) {
      isolateJQueryHandlers(jq, type);
      var jev = jq.Event(type);
      try {
        jq(document).trigger(jev, [data, meta]);
      } catch (err) {
        console.error('serverpush: a jQuery handler of ' + type + ' failed', err);
      }
      prevented = jev.isDefaultPrevented();
    }
    var ev = new CustomEvent(type, {detail: data, bubbles: true, cancelable: !!cancelable});
    ev.serverpush = meta;
    if (jq && jq.event) {
      var previous = jq.event.triggered;
      jq.event.triggered = type;
      try {
        prevented = !document.dispatchEvent(ev) || prevented;
      } finally {
        jq.event.triggered = previous;
      }
    } else {
      prevented = !document.dispatchEvent(ev);
    }
    return !(cancelable && prevented);
  }

  // jQuery stops calling the remaining handlers when one throws; native dispatch does
  // not. A `special.handle` hook is how jQuery lets us wrap each handler call, so one
  // broken handler cannot starve the others. Types someone else hooked are left alone.
  function isolateJQueryHandlers(jq, type) {
    if (jq.event.special[type]) return;
    jq.event.special[type] = {
      handle: function (event) {
        try {
          return event.handleObj.handler.apply(this, arguments);
        } catch (err) {
          console.error('serverpush: a jQuery handler of ' + type + ' failed', err);
        }
      }
    };
  }

  // Every socket event goes through here, so that the test hook exercises real logic.
  function handle(name, payload) {
    switch (name) {
      case 'serverpush': return onPush(payload);
      case 'serverpush_ready': return onReady(payload);
      case 'serverpush_refresh': return refresh(payload || {});
      case 'serverpush_resynced': return onResynced(payload || {});
      case 'serverpush_error': return onError(payload || {});
      case 'connect': return onConnect();
      case 'connect_error': return onConnectError(payload);
      case 'disconnect': return onDisconnect(payload);
    }
  }

  // The server replays and sends serverpush_ready from its connect handler, before it
  // acknowledges the connection; Socket.IO buffers those events and fires them before
  // 'connect'. So 'connect' can come after 'ready' (or a refresh) and must not undo it.
  function onConnect() {
    if (!stopped && api.state !== 'live') api.state = 'connecting';
  }

  function onPush(msg) {
    if (!msg || typeof msg.name !== 'string') return;
    // A message (unlike a change) is not idempotent: never fire one twice.
    if (msg.op === 'message' && seenMessage(msg.id != null ? msg.id : msg.cursor)) return;
    // The cursor moves before handlers run: if one of them breaks the page, a later
    // reconnect still resumes after this event instead of replaying it forever. Not for
    // a heal's events: the heal is whole only at serverpush_resynced, and a page whose
    // connection drops before that must resume from before the gap, to be healed again.
    if (!msg.resync) api.cursor = msg.cursor;
    api.received += 1;
    var meta = {op: msg.op, model: msg.model, pk: msg.pk, id: msg.id, cursor: msg.cursor, replay: !!msg.replay, resync: !!msg.resync,
                tab: msg.tab || null};  // tab: the id of the tab whose request made the change, if it said
    fire('serverpush_' + msg.name, msg.data, meta, false);
  }

  var seenMessages = [];
  function seenMessage(id) {
    if (id == null) return false;
    if (seenMessages.indexOf(id) >= 0) return true;
    seenMessages.push(id);
    if (seenMessages.length > 200) seenMessages.shift();
    return false;
  }

  function onReady(msg) {
    msg = msg || {};
    if (!msg.healing) api.cursor = msg.cursor;  // healing: the cursor moves at serverpush_resynced
    api.state = 'live';
    retries = 0;
    fire('serverpush_ready', {cursor: msg.cursor, replayed: msg.replayed}, null, false);
  }

  // The server could not replay what the page missed, and sent the current state of
  // everything it shows instead (events with meta.resync): the page is whole again.
  function onResynced(info) {
    if (info.cursor != null) api.cursor = info.cursor;
    api.healed += 1;
    api.state = 'live';
    fire('serverpush_resynced', {code: info.code, healed: info.healed}, null, false);
  }

  // The page may be stale and the server can neither replay nor heal it: the only safe
  // default is a reload, which renders a fresh page, token and cursor. After a log gap
  // the server asks for a random delay (jitter_ms), so its pages do not all reload at once.
  function refresh(info) {
    if (api.refreshed) return;  // at most once per page load
    var delay = info.jitter_ms > 0 ? Math.floor(Math.random() * info.jitter_ms) : 0;
    var detail = {code: info.code, message: info.message, delay: delay};
    api.refreshed = {code: detail.code, message: detail.message, reload: false, delay: delay};
    stop();
    if (fire('serverpush_refresh', detail, null, true)) {
      api.refreshed.reload = true;
      setTimeout(function () { api.reload(); }, delay);
    }
  }

  function onConnectError(err) {
    var data = (err && err.data) || {};
    var message = data.message || (err && err.message) || 'connection refused';
    if (!data.code && !unreachableLogged) {
      // No answer at all: most often no push server runs at that address. Said once
      // per page; the connection keeps retrying.
      unreachableLogged = true;
      console.error('serverpush: cannot reach the push server at ' + api.url + ' (' + message + '); is `./manage.py runserverpush` running?');
    }
    if (REFRESH_CODES[data.code]) {
      refresh({code: data.code, message: message});
    } else if (FATAL_CODES[data.code]) {
      // Retrying cannot help: the page itself carries a broken token or payload,
      // or was rendered for another log than the push server reads.
      stop();
      console.error('serverpush: connection refused (' + data.code + '): ' + message);
    } else if (api.socket && !api.socket.active) {
      // Socket.IO retries transport failures itself, but gives up on a connection
      // the server refused (server_error, or a code this client does not know).
      retry();
    }
  }

  // The server refused one client event (unknown_event, flood); after a flood it also
  // disconnects us, and we come back with backoff like after any server-side kick.
  function onError(info) {
    if (info.view) {
      // DEBUG only: the developer's update function, spec or serializer failed in the push server.
      console.error('serverpush: ' + info.code + ' in ' + info.view + (info.spec ? ', spec ' + JSON.stringify(info.spec) : '') + ': ' + (info.message || ''));
    } else {
      console.warn('serverpush: ' + (info.code || 'error') + ': ' + (info.message || ''));
    }
    fire('serverpush_error', info, null, false);
  }

  function onDisconnect(reason) {
    if (!stopped) api.state = 'disconnected';
    fire('serverpush_disconnect', {reason: reason}, null, false);
    // Socket.IO never reconnects after a server-side disconnect; we do, so that a
    // push server kicking its clients (restart, rebalancing) ends in a resume.
    if (reason === 'io server disconnect') retry();
  }

  function retry() {
    if (stopped || !api.socket) return;
    clearTimeout(retryTimer);
    var base = Math.min(RETRY_MAX, RETRY_MIN * 2 * Math.pow(2, retries));
    var delay = Math.min(RETRY_MAX, base * (0.5 + Math.random()));  // jitter: no thundering herd
    retries += 1;
    var socket = api.socket;
    retryTimer = setTimeout(function () {
      if (!stopped && socket === api.socket) {
        api.state = 'connecting';
        socket.connect();
      }
    }, delay);
  }

  function stop() {
    stopped = true;
    clearTimeout(retryTimer);
    if (api.socket) api.socket.disconnect();  // its disconnect event sees `stopped`
    api.state = 'refused';
  }

  // config: {url, port, token, cursor, path, transports}; a url that is a path ('/socket.io/')
  // means this page's own origin, with that Socket.IO path. Returns the Socket.IO socket.
  function connect(config) {
    config = config || {};
    if (typeof window.io !== 'function') {
      throw new Error('serverpush: load socket.io.min.js before serverpush.js');
    }
    if (api.socket) {
      var old = api.socket;
      api.socket = null;  // detaches old's listeners (they check api.socket) before closing it
      old.disconnect();
    }
    clearTimeout(retryTimer);
    stopped = false;
    retries = 0;
    api.state = 'connecting';
    api.cursor = config.cursor == null || config.cursor === '' ? null : String(config.cursor);
    if (api.pageCursor == null) api.pageCursor = api.cursor;
    api.token = config.token;
    var url = config.url || location.protocol + '//' + location.hostname + ':' + (config.port || 8013);
    var path = config.path || '/socket.io';
    if (url.charAt(0) === '/') {
      path = url;
      url = location.origin;
    }
    api.url = url + path;
    var socket = window.io(url, {
      path: path,
      transports: config.transports || ['polling', 'websocket'],
      withCredentials: true,  // the push server reads the Django session cookie itself
      // A function, not an object: Socket.IO calls it on every (re)connect, so each
      // attempt carries the cursor of the last event actually applied.
      auth: function (cb) { cb({token: config.token, cursor: api.cursor}); },
      reconnectionDelay: 500,
      reconnectionDelayMax: RETRY_MAX,
      randomizationFactor: 0.5,
      forceNew: true  // io() would otherwise hand back a cached socket with old auth
    });
    api.socket = socket;
    ['connect', 'serverpush', 'serverpush_ready', 'serverpush_refresh', 'serverpush_resynced', 'serverpush_error', 'connect_error', 'disconnect']
      .forEach(function (name) {
        socket.on(name, function (payload) {
          if (socket === api.socket) handle(name, payload);
        });
      });
    return socket;
  }

  function autoConnect() {
    var d = script ? script.dataset : {};
    if (!d.token) {
      api.state = 'disconnected';  // a page without subscriptions: nothing to listen to
      return;
    }
    var cursor = d.cursor;
    if (!cursor) {
      var stamp = document.getElementById('generated_timestamp');
      cursor = stamp ? stamp.textContent.trim() : null;
    }
    connect({url: d.url, port: d.port || 8013, token: d.token, cursor: cursor, path: d.path,
             transports: d.transports ? d.transports.split(',') : null});
  }

  // In <head> the #generated_timestamp element is not parsed yet; wait for it.
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', autoConnect);
  } else {
    autoConnect();
  }
})();
