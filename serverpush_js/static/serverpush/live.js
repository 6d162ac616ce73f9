/*!
 * serverpush live.js: live HTML without JavaScript (serverpush_js/README.md, "Bindings").
 * Load it after serverpush.js, watch.js and keep.js.
 *
 * Where the changes come from:
 *   data-serverpush-on="name ..."      the page's specs: the events serverpush_<name>
 *   data-serverpush-watch="<token>"    a watch ({% serverpush_watch obj %}), subscribed here
 * What the element does with each:
 *   data-serverpush-text="field"       its text becomes the payload's field ("" = the payload)
 *   data-serverpush-attr="href:url"    attributes from fields (false or null remove one)
 *   data-serverpush-swap[="outer"]     morphs its content (or itself) into the HTML payload
 *   data-serverpush-list[="prepend"]   items keyed by data-serverpush-key: create adds one,
 *                                      update morphs it, delete removes it
 *   data-serverpush-refresh            re-fetches the page and morphs this element (the body:
 *                                      the whole page), at most once per moment, never for a
 *                                      change this tab's own request made; aria-busy meanwhile
 * And forms:
 *   <form data-serverpush-submit>      posts in the background; clears only once sent
 *                                      (="keep": keeps what it says, as its saved state)
 */
(function () {
  'use strict';

  var api = window.serverpush;
  if (!api || !api.morph) throw new Error('serverpush: load serverpush.js and keep.js before live.js');

  var script = document.currentScript || document.querySelector('script[data-serverpush-live]');
  var tab = {key: (script && script.dataset.tabKey) || '', id: (script && script.dataset.tabId) || ''};
  var SOURCE = '[data-serverpush-on],[data-serverpush-watch]';
  var BINDING = '[data-serverpush-text],[data-serverpush-attr]';
  var ACTIONS = ['data-serverpush-refresh', 'data-serverpush-list', 'data-serverpush-swap', 'data-serverpush-text', 'data-serverpush-attr'];
  var REFRESH_DELAY = 200;  // ms: the changes of one moment make one refresh

  var listening = {};
  var watched = new Map();  // element -> its watch subscription

  // --- sources -------------------------------------------------------------------

  function each(root, selector, fn) {
    if (root.nodeType === 1 && root.matches(selector)) fn(root);
    Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
  }

  function names(el) {
    return (el.getAttribute('data-serverpush-on') || '').split(/\s+/).filter(Boolean);
  }

  // Binds what is new under `root`; forgets watches whose element left the page.
  function scan(root) {
    each(root, '[data-serverpush-on]', function (el) { names(el).forEach(listen); });
    each(root, '[data-serverpush-watch]', function (el) {
      if (!watched.has(el) && bound(el)) watch(el);
    });
    watched.forEach(function (sub, el) {
      if (!el.isConnected) {
        sub.unsubscribe();
        watched.delete(el);
      }
    });
  }

  // A watched element is ours if it says what to do; otherwise a script subscribes it.
  function bound(el) {
    if (ACTIONS.some(function (name) { return el.hasAttribute(name); })) return true;
    var mine = false;
    each(el, BINDING, function (b) { mine = mine || ownedBy(b, el); });
    return mine;
  }

  function listen(name) {
    if (listening[name]) return;
    listening[name] = true;
    document.addEventListener('serverpush_' + name, function (event) {
      var targets = document.querySelectorAll('[data-serverpush-on]');
      Array.prototype.forEach.call(targets, function (el) {
        if (el.isConnected && names(el).indexOf(name) >= 0) apply(el, event.detail, event.serverpush || {});
      });
    });
  }

  function watch(el) {
    if (typeof api.subscribe !== 'function') {
      console.error('serverpush: load watch.js to bind data-serverpush-watch elements');
      return;
    }
    var handler = function (data, meta) { apply(el, data, meta); };
    watched.set(el, api.subscribe(el, {create: handler, update: handler, delete: handler}));
  }

  function apply(el, data, meta) {
    try {
      if (el.hasAttribute('data-serverpush-refresh')) return changed(meta);
      if (el.hasAttribute('data-serverpush-list')) return listChange(el, data, meta);
      if (el.hasAttribute('data-serverpush-swap') && typeof data === 'string') {
        if (meta.op !== 'delete') api.morph(el, data, el.getAttribute('data-serverpush-swap') === 'outer');
        return scan(document);
      }
      if (meta.op !== 'delete') bind(el, data);
    } catch (err) {
      console.error('serverpush: the binding of ' + describe(el) + ' failed', err);
    }
  }

  function describe(el) {
    return '<' + el.tagName.toLowerCase() + (el.id ? ' id="' + el.id + '"' : '') + '>';
  }

  // --- text and attributes ---------------------------------------------------------

  // Whether `root`'s payload is what `el` shows: no other source, and no list item,
  // stands between them.
  function ownedBy(el, root) {
    for (var node = el.parentElement; node && node !== root; node = node.parentElement) {
      if (node.matches(SOURCE) || (node.parentElement && node.parentElement.hasAttribute('data-serverpush-list'))) return false;
    }
    return true;
  }

  function bind(root, data) {
    each(root, BINDING, function (el) {
      if (el !== root && !ownedBy(el, root)) return;
      if (el.hasAttribute('data-serverpush-text')) setText(el, field(data, el.getAttribute('data-serverpush-text')));
      pairs(el.getAttribute('data-serverpush-attr')).forEach(function (pair) {
        setAttribute(el, pair[0], field(data, pair[1]));
      });
    });
  }

  function field(data, path) {
    return path ? path.split('.').reduce(function (value, key) { return value == null ? undefined : value[key]; }, data) : data;
  }

  function pairs(text) {
    return (text || '').split(/\s+/).filter(Boolean).map(function (pair) {
      var colon = pair.indexOf(':');
      return colon < 0 ? [pair, pair] : [pair.slice(0, colon), pair.slice(colon + 1)];
    });
  }

  function setText(el, value) {
    var text = value == null ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
    if (el.textContent !== text) el.textContent = text;
  }

  function setAttribute(el, name, value) {
    if ((name === 'value' || name === 'checked') && api.typed(el)) return;  // never under the user's fingers
    if (value == null || value === false) el.removeAttribute(name);
    else el.setAttribute(name, value === true ? '' : String(value));
    if (name === 'value' && 'value' in el) el.value = value == null ? '' : String(value);
    if (name === 'checked' && 'checked' in el) el.checked = !!value;
  }

  // --- lists -------------------------------------------------------------------------

  function listChange(list, data, meta) {
    var key = meta.pk != null ? String(meta.pk) : meta.op === 'message' ? meta.id : null;
    var item = key == null ? null : itemOf(list, key);
    if (meta.op === 'delete') {
      if (item) item.remove();
      return;
    }
    if (data == null) return;  // its serializer failed: the server logged why
    if (item) {
      if (typeof data === 'string') api.morph(item, data, true);
      else bind(item, data);
      return scan(list);
    }
    item = build(list, data);
    if (key != null && !item.hasAttribute('data-serverpush-key')) item.setAttribute('data-serverpush-key', key);
    if (list.getAttribute('data-serverpush-list') === 'prepend') list.insertBefore(item, firstItem(list));
    else list.appendChild(item);
    scan(item);
  }

  function itemOf(list, key) {
    return Array.prototype.find.call(list.children, function (child) {
      return child.getAttribute('data-serverpush-key') === key;
    }) || null;
  }

  function firstItem(list) {
    return Array.prototype.find.call(list.children, function (child) { return child.tagName !== 'TEMPLATE'; }) || null;
  }

  // An item from the server's HTML, or from the list's <template> filled with the fields.
  function build(list, data) {
    if (typeof data === 'string') {
      var holder = document.createElement('template');
      holder.innerHTML = data.trim();
      if (!holder.content.firstElementChild) throw new Error('the item HTML has no element: ' + data.slice(0, 80));
      return holder.content.firstElementChild;
    }
    var template = list.querySelector(':scope > template');
    if (!template || !template.content.firstElementChild) {
      throw new Error('a list of field payloads needs a <template> child to make items from');
    }
    var item = template.content.firstElementChild.cloneNode(true);
    bind(item, data);
    return item;
  }

  // --- page refresh ----------------------------------------------------------------------

  var refresh = {timer: null, busy: false, again: false};

  function changed(meta) {
    if (meta && meta.tab && meta.tab === tab.id) return;  // this tab's own change: it refreshed already
    schedule(REFRESH_DELAY);
  }

  // The refreshed elements are aria-busy from the change until the morph: CSS can say so.
  function schedule(delay) {
    busy(true);
    if (refresh.busy) {
      refresh.again = true;
      return;
    }
    if (refresh.timer === null) refresh.timer = setTimeout(refetch, delay);
  }

  function busy(on) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-serverpush-refresh]'), function (el) {
      if (on) el.setAttribute('aria-busy', 'true');
      else el.removeAttribute('aria-busy');
    });
  }

  function refetch() {
    refresh.timer = null;
    refresh.busy = true;
    refresh.again = false;
    fetch(location.href, {headers: headers(), credentials: 'same-origin'})
      .then(function (response) {
        if (!response.ok) throw new Error('GET ' + location.pathname + ' answered ' + response.status);
        return response.text();
      })
      .then(morphPage)
      .catch(function (err) { console.warn('serverpush: could not refresh the page', err); })
      .then(function () {
        refresh.busy = false;
        if (refresh.again) schedule(REFRESH_DELAY);
        else busy(false);
      });
  }

  function morphPage(html) {
    var page = new DOMParser().parseFromString(html, 'text/html');
    Array.prototype.forEach.call(document.querySelectorAll('[data-serverpush-refresh]'), function (el) {
      var fresh = el === document.body ? page.body : el.id ? page.getElementById(el.id) : null;
      if (fresh) api.morph(el, fresh, true);
      else console.warn('serverpush: ' + describe(el) + ' has data-serverpush-refresh but no id to find it by');
    });
    if (page.title) document.title = page.title;
    scan(document);
  }

  function headers() {
    return tab.key ? {'X-Serverpush-Tab': tab.key} : {};
  }

  // --- forms -------------------------------------------------------------------------------

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute('data-serverpush-submit')) return;
    if ((form.getAttribute('method') || 'get').toLowerCase() !== 'post') return;  // a GET form navigates
    event.preventDefault();
    submit(form, event.submitter);
  });

  function submit(form, submitter) {
    if (form.getAttribute('aria-busy') === 'true') return;
    var body = new FormData(form, submitter || undefined);
    if (form.enctype !== 'multipart/form-data') body = new URLSearchParams(body);  // as the browser would send it
    form.setAttribute('aria-busy', 'true');
    fetch(form.action, {method: 'POST', body: body, headers: headers(), credentials: 'same-origin'})
      .then(function (response) {
        if (!response.ok) throw new Error('the server answered ' + response.status + ' ' + response.statusText);
        form.removeAttribute('data-serverpush-error');
        // Only now, with what was typed on the server: clear the form, or keep what it says.
        if (form.getAttribute('data-serverpush-submit') === 'keep') settle(form);
        else form.reset();
        if (document.querySelector('[data-serverpush-refresh]')) schedule(0);
      })
      .catch(function (err) {
        var why = err instanceof TypeError ? 'the server could not be reached' : err.message;
        form.setAttribute('data-serverpush-error', 'Not sent: ' + why + '. What you typed is kept; try again.');
      })
      .then(function () { form.removeAttribute('aria-busy'); });
  }

  // What the form says is now its saved state: its fields are no longer typed-in.
  function settle(form) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.type === 'checkbox' || el.type === 'radio') el.defaultChecked = el.checked;
      else if (el instanceof HTMLSelectElement) Array.prototype.forEach.call(el.options, function (o) { o.defaultSelected = o.selected; });
      else if ('defaultValue' in el) el.defaultValue = el.value;
    });
  }

  api.tab = tab;

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { scan(document); });
  } else {
    scan(document);
  }
})();
