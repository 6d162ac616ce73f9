/*!
 * serverpush ws.js: talk to a server-side handler (SERVERPUSH_HANDLERS), as django-ws did,
 * through a WebSocket-like object (docs/protocol.md, "Handlers"). Load it after serverpush.js.
 *
 *   var ws = serverpush.ws('default');
 *   ws.onopen = function () { ws.send("First msg"); };
 *   ws.onmessage = function (event) { $('body').html(event.data); };
 */
(function () {
  'use strict';

  var api = window.serverpush;
  if (!api) throw new Error('serverpush: load serverpush.js before ws.js');

  var CONNECTING = 0, OPEN = 1, CLOSED = 3;
  var channels = {};

  // One per namespace: the Socket.IO namespace /ws/<namespace> on the page's connection,
  // authenticated with the page token (and the session cookie) like the page itself.
  function Channel(namespace) {
    this.namespace = namespace;
    this.readyState = CONNECTING;
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    this.socket = null;
    this.error = null;  // {code, message} of the last serverpush_error or refusal
  }
  Channel.prototype.CONNECTING = CONNECTING;
  Channel.prototype.OPEN = OPEN;
  Channel.prototype.CLOSED = CLOSED;

  // Sent once open; Socket.IO buffers what is sent while (re)connecting.
  Channel.prototype.send = function (data) {
    if (this.readyState === CLOSED) throw new Error('serverpush.ws(' + this.namespace + '): the connection is closed');
    if (this.socket) this.socket.send(data);
    else (this.pending = this.pending || []).push(data);
  };

  Channel.prototype.close = function () {
    if (this.socket) this.socket.disconnect();  // its disconnect listener finishes the close
    else finish(this, {code: 'closed', message: 'closed by the page'});
  };

  function call(channel, name, event) {
    var handler = channel[name];
    if (typeof handler !== 'function') return;
    try {
      handler.call(channel, event);
    } catch (err) {
      console.error('serverpush: ws(' + channel.namespace + ').' + name + ' failed', err);
    }
  }

  function finish(channel, reason) {
    if (channel.readyState === CLOSED) return;
    channel.readyState = CLOSED;
    if (channels[channel.namespace] === channel) delete channels[channel.namespace];
    call(channel, 'onclose', {code: reason.code, reason: reason.message});
  }

  function open(channel) {
    if (!api.socket || !api.token) {
      channel.error = {code: 'no_token', message: 'this page has no page token: add {% serverpush_token %} before {% serverpush_script %}'};
      console.error('serverpush: ws(' + channel.namespace + '): ' + channel.error.message);
      return finish(channel, channel.error);
    }
    var socket = channel.socket = api.socket.io.socket('/ws/' + channel.namespace, {
      auth: function (cb) { cb({token: api.token}); }
    });
    socket.on('connect', function () {
      channel.readyState = OPEN;
      call(channel, 'onopen', {type: 'open'});
      (channel.pending || []).splice(0).forEach(function (data) { socket.send(data); });
    });
    socket.on('message', function (data) { call(channel, 'onmessage', {type: 'message', data: data}); });
    socket.on('serverpush_error', function (err) {
      channel.error = err || {};
      call(channel, 'onerror', {type: 'error', code: channel.error.code, message: channel.error.message});
    });
    socket.on('connect_error', function (err) {
      if (socket.active) return;  // a transport failure: Socket.IO retries
      // Refused (bad token, no such namespace): final.
      var data = (err && err.data) || {};
      channel.error = {code: data.code || 'refused', message: data.message || (err && err.message) || 'connection refused'};
      call(channel, 'onerror', {type: 'error', code: channel.error.code, message: channel.error.message});
      finish(channel, channel.error);
    });
    socket.on('disconnect', function (reason) {
      // The server closed it (a handler raised, or the page left): final, like a WebSocket.
      if (reason === 'io server disconnect' || reason === 'io client disconnect') {
        finish(channel, channel.error || {code: 'closed', message: reason});
      } else {
        channel.readyState = CONNECTING;  // the network: Socket.IO reconnects, onopen fires again
      }
    });
  }

  // serverpush.ws(namespace = 'default'): the page's channel to that handler.
  api.ws = function (namespace) {
    namespace = namespace || 'default';
    var channel = channels[namespace];
    if (channel) return channel;
    channel = channels[namespace] = new Channel(namespace);
    // serverpush.js connects once the DOM is parsed; a channel made earlier waits for that.
    if (api.socket || document.readyState !== 'loading') {
      open(channel);
    } else {
      document.addEventListener('DOMContentLoaded', function () { open(channel); });
    }
    return channel;
  };
})();
