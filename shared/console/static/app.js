// Keyway admin console. Plain JavaScript, no dependencies, no build step.
//
// Rules this file keeps:
// - Every user-controlled string reaches the page as text (textContent or a
//   text node via el()); no HTML string is ever parsed.
// - Every URL is relative to this script, so the console works behind an API
//   Gateway stage prefix (/prod/ui/) and at a domain root (/ui/).
// - The key lives in sessionStorage and travels only as
//   "Authorization: Bearer"; the API decides what the caller may do.
// - A view makes a bounded number of API calls when it is opened or a
//   button is pressed; nothing polls.
'use strict';
(function () {
  var script = document.currentScript;
  var BASE = new URL('../', script ? script.src : location.href); // the gateway root
  var STORE = 'keyway.key';
  var state = { key: null, who: null, gen: 0 };

  // ---------- DOM helpers (text only) ----------
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k.slice(0, 2) === 'on' && typeof v === 'function') node.addEventListener(k.slice(2), v);
        else if (k === 'text') node.textContent = String(v);
        else if (k === 'value') node.value = v;
        else if (k === 'checked') node.checked = !!v;
        else node.setAttribute(k, v === true ? '' : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  var SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = String(attrs[k]);
      else node.setAttribute(k, String(attrs[k]));
    });
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function $(id) { return document.getElementById(id); }

  // ---------- formatting ----------
  function money(n) {
    n = Number(n || 0);
    if (n !== 0 && Math.abs(n) < 0.01) return '$' + n.toPrecision(2);
    return '$' + n.toFixed(2);
  }
  function num(n) { return Number(n || 0).toLocaleString('en-US'); }
  function when(s) {
    if (!s) return '—';
    var d = new Date(s);
    if (isNaN(d)) return String(s);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }
  function dash(s) { return s === undefined || s === null || s === '' ? '—' : String(s); }
  function day(d) { return d.toISOString().slice(0, 10); }
  function list(s) {
    return String(s || '').split(',').map(function (x) { return x.trim(); }).filter(Boolean);
  }

  // ---------- API ----------
  function ApiError(status, body) {
    var e = (body && body.error) || {};
    this.status = status;
    this.param = e.param || null;
    this.type = e.type || '';
    this.message = e.message || ('request failed with status ' + status);
  }
  ApiError.prototype.toString = function () {
    return this.message + (this.status ? ' (' + this.status + ')' : '');
  };

  // api calls the gateway: path is relative to the gateway root.
  function api(method, path, opts) {
    opts = opts || {};
    var url = new URL(path, BASE);
    if (opts.query) {
      Object.keys(opts.query).forEach(function (k) {
        var v = opts.query[k];
        if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
      });
    }
    var init = { method: method, headers: { 'Authorization': 'Bearer ' + (opts.key || state.key) },
      credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' };
    if (opts.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    return fetch(url.toString(), init).then(function (resp) {
      return resp.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!resp.ok) {
          if (resp.status === 401 && !opts.key) expired();
          throw new ApiError(resp.status, body);
        }
        if (opts.headers) return { body: body, headers: resp.headers };
        return body;
      });
    }, function () {
      throw new ApiError(0, { error: { message: 'the gateway could not be reached' } });
    });
  }

  function expired() {
    // The key stopped working (blocked, expired, deleted, regenerated).
    notice('The key was refused (401). Sign in again.');
  }

  function notice(msg) {
    var n = $('notice');
    n.textContent = msg || '';
    n.hidden = !msg;
  }

  // errorBox renders an API error as a readable line.
  function errorBox(err) {
    var text = err instanceof ApiError ? err.toString() : String(err && err.message || err);
    var p = el('p', { 'class': 'error', role: 'alert', text: text });
    if (err && err.param) add(p, el('span', { 'class': 'param', text: ' — field: ' + err.param }));
    return p;
  }

  // ---------- session ----------
  function isViewer() {
    return state.who && /viewer$/.test(state.who.role || '');
  }
  function isAdmin() {
    return state.who && (state.who.role === 'proxy_admin' || state.who.role === 'proxy_admin_viewer');
  }
  // seesAll: the master key or an admin role reads every user, not only its own.
  function seesAll() {
    return isAdmin() || state.who.master;
  }

  // identify asks the API who the key is: /key/info about itself (the master
  // key is not a virtual key and gets 400 naming "key"), then its user's role.
  function identify(key) {
    return api('GET', 'key/info', { key: key }).then(function (r) {
      var info = r.info || {};
      var who = { master: false, keyName: info.key_name, userId: info.user_id || null, teamId: info.team_id || null, role: 'internal_user' };
      if (!who.userId) { who.role = 'service key'; return who; }
      return api('GET', 'user/info', { key: key, query: { user_id: who.userId } }).then(function (u) {
        who.role = (u.user_info && u.user_info.user_role) || 'internal_user';
        return who;
      }, function () { return who; });
    }, function (err) {
      if (err.status === 400 && err.param === 'key') return { master: true, role: 'proxy_admin', keyName: 'master key' };
      throw err;
    });
  }

  function login(key) {
    $('login-error').textContent = '';
    return identify(key).then(function (who) {
      state.key = key;
      state.who = who;
      try { sessionStorage.setItem(STORE, key); } catch (e) { /* private mode: keep it in memory */ }
      enter();
    }, function (err) {
      $('login-error').textContent = err instanceof ApiError ? err.toString() : String(err);
    });
  }

  function logout() {
    try { sessionStorage.removeItem(STORE); } catch (e) { /* nothing stored */ }
    state.key = null; state.who = null; state.gen++;
    // The next sign-in starts at the keys view, not where this one left off.
    history.replaceState(null, '', location.pathname + location.search);
    clear($('view'));
    clear($('status'));
    $('who').textContent = '';
    $('nav').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    notice('');
    $('login-key').value = '';
    $('login-key').focus();
  }

  function enter() {
    $('login').hidden = true;
    $('nav').hidden = false;
    $('logout').hidden = false;
    $('login-key').value = '';
    notice('');
    var w = state.who;
    $('who').textContent = (w.master ? 'master key' : (w.userId ? w.userId : dash(w.keyName))) + ' · ' + w.role;
    loadStatus();
    if (!location.hash || location.hash === '#') location.hash = '#keys';
    else route();
  }

  function loadStatus() {
    api('GET', 'config/pass_through_endpoint').then(function (r) {
      var st = r.keyway_status;
      var s = clear($('status'));
      if (!st) return;
      add(s, (st.source ? 'Config: ' + st.source + ' · ' : '') + 'loaded ' + when(st.loaded_at) +
        ' · last checked ' + when(st.checked_at) + ' · ' + r.endpoints.length + ' endpoint(s)');
    }, function (err) { clear($('status')).appendChild(errorBox(err)); });
  }

  // ---------- routing ----------
  var views = {};
  function route() {
    if (!state.key) return;
    var name = (location.hash || '#keys').slice(1).split('?')[0] || 'keys';
    if (!views[name]) name = 'keys';
    Array.prototype.forEach.call(document.querySelectorAll('#nav a'), function (a) {
      if (a.getAttribute('data-view') === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    state.gen++;
    var root = clear($('view'));
    root.setAttribute('data-view', name);
    views[name](root, state.gen);
  }
  // current reports whether a view rendered for gen is still on screen.
  function current(gen) { return gen === state.gen; }

  // ---------- forms ----------
  // field describes one input: [name, label, kind, options]
  function formFields(defs, values) {
    values = values || {};
    return defs.map(function (d) {
      var id = 'f-' + d.name + '-' + Math.random().toString(36).slice(2, 8);
      var v = values[d.name];
      var input;
      if (d.kind === 'select') {
        input = el('select', { id: id, name: d.name },
          d.options.map(function (o) { return el('option', { value: o, text: o || '(none)', selected: v === o }); }));
      } else if (d.kind === 'checkbox') {
        input = el('input', { id: id, name: d.name, type: 'checkbox', checked: !!v });
      } else if (d.kind === 'json') {
        input = el('textarea', { id: id, name: d.name, rows: 3, spellcheck: 'false', placeholder: '{}' });
        if (v && Object.keys(v).length) input.value = JSON.stringify(v);
      } else {
        input = el('input', { id: id, name: d.name, type: d.kind === 'number' ? 'number' : 'text',
          step: d.kind === 'number' ? 'any' : null, min: d.kind === 'number' ? '0' : null,
          placeholder: d.hint || null, spellcheck: 'false', autocomplete: 'off' });
        if (v !== undefined && v !== null) input.value = Array.isArray(v) ? v.join(', ') : v;
      }
      input.setAttribute('data-kind', d.kind || 'text');
      return el('div', { 'class': 'field' + (d.kind === 'checkbox' ? ' check' : '') },
        el('label', { 'for': id, text: d.label }), input);
    });
  }

  // readForm returns the fields that were filled in, typed; initial holds the
  // values the form opened with, so an edit sends only what changed.
  function readForm(form, initial) {
    var out = {};
    var problems = [];
    Array.prototype.forEach.call(form.querySelectorAll('[name]'), function (input) {
      var name = input.name, kind = input.getAttribute('data-kind');
      var raw = input.type === 'checkbox' ? input.checked : input.value.trim();
      var v;
      if (kind === 'checkbox') v = raw;
      else if (raw === '') return;
      else if (kind === 'number') { v = Number(raw); if (!isFinite(v)) { problems.push(name + ' must be a number'); return; } }
      else if (kind === 'list') v = list(raw);
      else if (kind === 'json') {
        try { v = JSON.parse(raw); } catch (e) { problems.push(name + ' must be a JSON object'); return; }
      } else v = raw;
      if (initial && JSON.stringify(initial[name]) === JSON.stringify(v)) return;
      if (initial && kind === 'checkbox' && !v && !initial[name]) return;
      out[name] = v;
    });
    if (problems.length) throw new Error(problems.join('; '));
    return out;
  }

  // panel opens an inline dialog above a view's content; Escape closes it.
  function panel(root, title, body, onClose) {
    var existing = root.querySelector('.panel.dialog');
    if (existing) existing.remove();
    var close = function () { p.remove(); $('main').focus(); if (onClose) onClose(); };
    var p = el('section', { 'class': 'panel dialog', role: 'dialog', 'aria-label': title,
      onkeydown: function (e) { if (e.key === 'Escape') close(); } },
      el('div', { 'class': 'dialog-head' }, el('h2', { text: title }),
        el('button', { type: 'button', 'class': 'ghost', 'aria-label': 'Close', onclick: close, text: '×' })),
      body);
    root.insertBefore(p, root.firstChild.nextSibling);
    var first = p.querySelector('input, select, textarea, button.primary, button');
    if (first) first.focus();
    p.close = close;
    return p;
  }

  // formPanel: a form that calls submit(values) and shows its error inline.
  function formPanel(root, title, defs, values, submitText, submit) {
    var err = el('div', { 'class': 'form-error' });
    var form = el('form', { 'class': 'grid', novalidate: true }, formFields(defs, values),
      el('div', { 'class': 'actions' }, el('button', { type: 'submit', 'class': 'primary', text: submitText })), err);
    var p = panel(root, title, form);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      clear(err);
      var data;
      try { data = readForm(form, values); } catch (x) { err.appendChild(errorBox(x)); return; }
      var btn = form.querySelector('button[type=submit]');
      btn.disabled = true;
      submit(data).then(function () { p.remove(); }, function (x) {
        btn.disabled = false;
        err.appendChild(errorBox(x));
      });
    });
    return p;
  }

  function confirmPanel(root, title, message, action, run) {
    var err = el('div');
    var btn = el('button', { type: 'button', 'class': 'danger', text: action });
    var p = panel(root, title, el('div', null, el('p', { text: message }),
      el('div', { 'class': 'actions' }, btn,
        el('button', { type: 'button', text: 'Cancel', onclick: function () { p.close(); } })), err));
    btn.addEventListener('click', function () {
      btn.disabled = true;
      clear(err);
      run().then(function () { p.remove(); }, function (x) { btn.disabled = false; err.appendChild(errorBox(x)); });
    });
    btn.focus();
    return p;
  }

  // secretPanel shows a new secret once, with a copy button.
  function secretPanel(root, title, secret) {
    var input = el('input', { type: 'text', readonly: true, 'class': 'secret', value: secret, 'aria-label': 'New key', spellcheck: 'false' });
    var copied = el('span', { 'class': 'copied', role: 'status' });
    var copy = el('button', { type: 'button', 'class': 'primary', text: 'Copy', onclick: function () {
      var done = function () { copied.textContent = 'Copied.'; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(secret).then(done, function () { input.select(); document.execCommand('copy'); done(); });
      } else { input.select(); document.execCommand('copy'); done(); }
    } });
    var p = panel(root, title, el('div', { 'class': 'secret-box' },
      el('p', { text: 'Copy this key now. It is shown this once; Keyway stores only its hash.' }),
      el('div', { 'class': 'row' }, input, copy, copied),
      el('div', { 'class': 'actions' }, el('button', { type: 'button', text: 'Done', onclick: function () { p.close(); } }))));
    input.focus();
    input.select();
    return p;
  }

  function table(cols, rows, empty) {
    if (!rows.length) return el('p', { 'class': 'empty', text: empty || 'Nothing here yet.' });
    return el('div', { 'class': 'table-wrap' }, el('table', null,
      el('thead', null, el('tr', null, cols.map(function (c) { return el('th', { scope: 'col', text: c }); }))),
      el('tbody', null, rows)));
  }
  function td(v, cls) { return el('td', { 'class': cls || null }, v); }

  function pager(page, totalPages, go) {
    return el('nav', { 'class': 'pager', 'aria-label': 'Pages' },
      el('button', { type: 'button', disabled: page <= 1, onclick: function () { go(page - 1); }, text: '‹ Previous' }),
      el('span', { text: 'page ' + page + ' of ' + Math.max(totalPages || 1, 1) }),
      el('button', { type: 'button', disabled: page >= (totalPages || 1), onclick: function () { go(page + 1); }, text: 'Next ›' }));
  }

  function header(root, title, buttons) {
    root.appendChild(el('div', { 'class': 'view-head' }, el('h1', { text: title }), el('div', { 'class': 'actions' }, buttons)));
  }

  // ---------- keys ----------
  // The rate limits every key, user and team form has.
  var rateFields = [
    { name: 'rpm_limit', label: 'Requests / minute', kind: 'number' },
    { name: 'tpm_limit', label: 'Tokens / minute', kind: 'number' },
    { name: 'max_parallel_requests', label: 'Max parallel requests', kind: 'number' }
  ];
  var keyFields = [
    { name: 'key_alias', label: 'Alias' },
    { name: 'user_id', label: 'User id' },
    { name: 'team_id', label: 'Team id' },
    { name: 'duration', label: 'Expires after', hint: '30d, 24h, 1mo (empty: never)' },
    { name: 'allowed_routes', label: 'Allowed routes', kind: 'list', hint: '/v1/ocr, /v2/*' },
    { name: 'allowed_passthrough_routes', label: 'Allowed pass-through routes', kind: 'list' },
    { name: 'models', label: 'Models', kind: 'list' },
    { name: 'max_budget', label: 'Max budget ($)', kind: 'number' },
    { name: 'soft_budget', label: 'Soft budget ($)', kind: 'number' },
    { name: 'budget_duration', label: 'Budget period', hint: '30d' }
  ].concat(rateFields, [
    { name: 'key_type', label: 'Key type', kind: 'select', options: ['', 'default', 'llm_api', 'management', 'read_only'] },
    { name: 'metadata', label: 'Metadata (JSON)', kind: 'json' }
  ]);
  var customKeyField = { name: 'key', label: 'Custom key value (optional)', hint: 'sk-… (empty: random)' };

  views.keys = function (root, gen) {
    var q = { page: 1, size: 25, key_alias: '', user_id: '', team_id: '' };
    var body = el('div');
    var writable = !isViewer();
    header(root, 'Keys', writable ? [el('button', { type: 'button', 'class': 'primary', 'data-act': 'new-key', text: 'Create key', onclick: function () {
      formPanel(root, 'Create key', [customKeyField].concat(keyFields), null, 'Create', function (v) {
        if (v.key_type === '') delete v.key_type;
        return api('POST', 'key/generate', { body: v }).then(function (r) {
          secretPanel(root, 'Key created: ' + (r.key_alias || r.key_name), r.key);
          load();
        });
      });
    } })] : []);
    var search = el('form', { 'class': 'filters', role: 'search' },
      formFields([{ name: 'key_alias', label: 'Alias (exact)' }, { name: 'user_id', label: 'User id' }, { name: 'team_id', label: 'Team id' }]),
      el('button', { type: 'submit', text: 'Search' }));
    search.addEventListener('submit', function (e) {
      e.preventDefault();
      var v = readForm(search);
      q.key_alias = v.key_alias || ''; q.user_id = v.user_id || ''; q.team_id = v.team_id || ''; q.page = 1;
      load();
    });
    root.appendChild(search);
    root.appendChild(body);

    function load() {
      clear(body).appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
      api('GET', 'key/list', { query: { page: q.page, size: q.size, key_alias: q.key_alias, user_id: q.user_id, team_id: q.team_id, return_full_object: 'true' } }).then(function (r) {
        if (!current(gen)) return;
        clear(body);
        var rows = (r.keys || []).map(function (k) {
          if (typeof k === 'string') k = { token: k };
          var acts = el('td', { 'class': 'acts' });
          if (writable) {
            add(acts, [
              el('button', { type: 'button', 'data-act': 'edit', text: 'Edit', onclick: function () { editKey(k); } }),
              el('button', { type: 'button', 'data-act': 'regenerate', text: 'Regenerate', onclick: function () { regenerate(k); } }),
              k.blocked
                ? el('button', { type: 'button', 'data-act': 'unblock', text: 'Unblock', onclick: function () { act('key/unblock', k); } })
                : el('button', { type: 'button', 'data-act': 'block', text: 'Block', onclick: function () { act('key/block', k); } }),
              el('button', { type: 'button', 'class': 'danger', 'data-act': 'delete', text: 'Delete', onclick: function () {
                confirmPanel(root, 'Delete key', 'Delete ' + (k.key_alias || k.key_name) + '? Calls with it will be refused at once. This cannot be undone.', 'Delete key', function () {
                  return api('POST', 'key/delete', { body: { keys: [k.token] } }).then(load);
                });
              } })
            ]);
          }
          return el('tr', { 'data-token': k.token },
            td(dash(k.key_alias), 'alias'), td(el('code', { text: dash(k.key_name) })), td(dash(k.user_id)), td(dash(k.team_id)),
            td(k.expires ? when(k.expires) : 'never'), td(money(k.spend), 'num'),
            td(k.max_budget === null || k.max_budget === undefined ? '—' : money(k.max_budget), 'num'),
            td(el('span', { 'class': 'badge ' + (k.blocked ? 'bad' : 'ok'), text: k.blocked ? 'blocked' : 'active' })),
            acts);
        });
        body.appendChild(table(['Alias', 'Key', 'User', 'Team', 'Expires', 'Spend', 'Budget', 'Status', ''], rows, 'No keys match.'));
        body.appendChild(pager(r.current_page || q.page, r.total_pages, function (p) { q.page = p; load(); }));
        add(body, el('p', { 'class': 'muted', text: num(r.total_count) + ' key(s)' }));
      }, function (err) { if (current(gen)) clear(body).appendChild(errorBox(err)); });
    }

    function act(path, k) {
      api('POST', path, { body: { key: k.token } }).then(load, function (err) { notice(err.toString()); });
    }

    function editKey(k) {
      var values = {};
      keyFields.forEach(function (f) { values[f.name] = k[f.name]; });
      values.metadata = k.metadata;
      var defs = keyFields.map(function (f) { return f.name === 'duration' ? { name: 'duration', label: 'New expiry: from now', hint: 'e.g. 30d (empty: unchanged)' } : f; });
      formPanel(root, 'Edit key ' + (k.key_alias || k.key_name), defs, values, 'Save', function (v) {
        if (v.key_type === '') delete v.key_type;
        v.key = k.token;
        return api('POST', 'key/update', { body: v }).then(load);
      });
    }

    function regenerate(k) {
      formPanel(root, 'Regenerate ' + (k.key_alias || k.key_name), [
        { name: 'grace_period', label: 'Old key keeps working for', hint: '1h, 1d (empty: stops now)' },
        { name: 'new_key', label: 'Custom new value (optional)', hint: 'sk-…' }
      ], null, 'Regenerate', function (v) {
        v.key = k.token;
        return api('POST', 'key/regenerate', { body: v }).then(function (r) {
          secretPanel(root, 'New secret for ' + (r.key_alias || r.key_name), r.key);
          load();
        });
      });
    }
    load();
  };

  // ---------- users ----------
  var roles = ['internal_user', 'internal_user_viewer', 'proxy_admin', 'proxy_admin_viewer'];
  var userFields = [
    { name: 'user_email', label: 'Email' },
    { name: 'user_alias', label: 'Alias' },
    { name: 'user_role', label: 'Role', kind: 'select', options: roles },
    { name: 'teams', label: 'Teams', kind: 'list', hint: 'team ids, comma-separated' },
    { name: 'max_budget', label: 'Max budget ($)', kind: 'number' },
    { name: 'budget_duration', label: 'Budget period', hint: '30d' }
  ].concat(rateFields, [
    { name: 'models', label: 'Models', kind: 'list' },
    { name: 'metadata', label: 'Metadata (JSON)', kind: 'json' }
  ]);

  views.users = function (root, gen) {
    var page = 1;
    var body = el('div');
    var writable = !isViewer();
    header(root, 'Users', writable && isAdmin() || state.who.master ? [el('button', { type: 'button', 'class': 'primary', 'data-act': 'new-user', text: 'Create user', onclick: function () {
      formPanel(root, 'Create user', [{ name: 'user_id', label: 'User id', hint: 'empty: a random id' }].concat(userFields,
        [{ name: 'auto_create_key', label: 'Also create a key', kind: 'checkbox' }]), { auto_create_key: false }, 'Create', function (v) {
        v.auto_create_key = !!v.auto_create_key;
        return api('POST', 'user/new', { body: v }).then(function (r) {
          if (r.key) secretPanel(root, 'User ' + r.user_id + ' created with a key', r.key);
          load();
        });
      });
    } })] : []);
    root.appendChild(body);

    function load() {
      clear(body).appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
      var call = seesAll()
        ? api('GET', 'user/list', { query: { page: page, page_size: 25 } })
        : api('GET', 'user/info', { query: { user_id: state.who.userId } }).then(function (r) { return { users: [r.user_info], page: 1, total_pages: 1, total: 1 }; });
      call.then(function (r) {
        if (!current(gen)) return;
        clear(body);
        var rows = (r.users || []).map(function (u) {
          var acts = el('td', { 'class': 'acts' });
          if (writable) {
            add(acts, el('button', { type: 'button', 'data-act': 'edit', text: 'Edit', onclick: function () {
              formPanel(root, 'Edit user ' + u.user_id, userFields.concat([{ name: 'blocked', label: 'Blocked', kind: 'checkbox' }]), u, 'Save', function (v) {
                v.user_id = u.user_id;
                return api('POST', 'user/update', { body: v }).then(load);
              });
            } }));
            if (seesAll()) {
              add(acts, el('button', { type: 'button', 'class': 'danger', 'data-act': 'delete', text: 'Delete', onclick: function () {
                confirmPanel(root, 'Delete user', 'Delete user ' + u.user_id + ' and every key it owns? This cannot be undone.', 'Delete user', function () {
                  return api('POST', 'user/delete', { body: { user_ids: [u.user_id] } }).then(load);
                });
              } }));
            }
          }
          return el('tr', { 'data-user': u.user_id }, td(u.user_id), td(dash(u.user_email)), td(dash(u.user_role)),
            td(dash((u.teams || []).join(', '))), td(money(u.spend), 'num'),
            td(u.max_budget === null || u.max_budget === undefined ? '—' : money(u.max_budget), 'num'),
            td(el('span', { 'class': 'badge ' + (u.blocked ? 'bad' : 'ok'), text: u.blocked ? 'blocked' : 'active' })), acts);
        });
        body.appendChild(table(['User', 'Email', 'Role', 'Teams', 'Spend', 'Budget', 'Status', ''], rows, 'No users yet.'));
        body.appendChild(pager(r.page || page, r.total_pages, function (p) { page = p; load(); }));
      }, function (err) { if (current(gen)) clear(body).appendChild(errorBox(err)); });
    }
    load();
  };

  // ---------- teams ----------
  var teamFields = [
    { name: 'team_alias', label: 'Alias' },
    { name: 'allowed_passthrough_routes', label: 'Allowed pass-through routes', kind: 'list' },
    { name: 'models', label: 'Models', kind: 'list' },
    { name: 'max_budget', label: 'Max budget ($)', kind: 'number' },
    { name: 'budget_duration', label: 'Budget period', hint: '30d' }
  ].concat(rateFields, [
    { name: 'metadata', label: 'Metadata (JSON)', kind: 'json' }
  ]);

  views.teams = function (root, gen) {
    var body = el('div');
    var admin = state.who.master || state.who.role === 'proxy_admin';
    header(root, 'Teams', admin ? [el('button', { type: 'button', 'class': 'primary', 'data-act': 'new-team', text: 'Create team', onclick: function () {
      formPanel(root, 'Create team', [{ name: 'team_id', label: 'Team id', hint: 'empty: a random id' }].concat(teamFields,
        [{ name: 'members', label: 'Members (user ids)', kind: 'list' }]), null, 'Create', function (v) {
        var members = v.members || [];
        delete v.members;
        if (members.length) v.members_with_roles = members.map(function (id) { return { role: 'user', user_id: id }; });
        return api('POST', 'team/new', { body: v }).then(load);
      });
    } })] : []);
    root.appendChild(body);

    function load() {
      clear(body).appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
      api('GET', 'team/list').then(function (teams) {
        if (!current(gen)) return;
        clear(body);
        var rows = (teams || []).map(function (t) {
          var acts = el('td', { 'class': 'acts' },
            el('button', { type: 'button', 'data-act': 'members', text: 'Members', onclick: function () { members(t); } }));
          if (admin) {
            add(acts, [
              el('button', { type: 'button', 'data-act': 'edit', text: 'Edit', onclick: function () {
                formPanel(root, 'Edit team ' + t.team_id, teamFields.concat([{ name: 'blocked', label: 'Blocked', kind: 'checkbox' }]), t, 'Save', function (v) {
                  v.team_id = t.team_id;
                  return api('POST', 'team/update', { body: v }).then(load);
                });
              } }),
              el('button', { type: 'button', 'class': 'danger', 'data-act': 'delete', text: 'Delete', onclick: function () {
                confirmPanel(root, 'Delete team', 'Delete team ' + t.team_id + ' and every key bound to it? This cannot be undone.', 'Delete team', function () {
                  return api('POST', 'team/delete', { body: { team_ids: [t.team_id] } }).then(load);
                });
              } })
            ]);
          }
          return el('tr', { 'data-team': t.team_id }, td(t.team_id), td(dash(t.team_alias)), td(money(t.spend), 'num'),
            td(t.max_budget === null || t.max_budget === undefined ? '—' : money(t.max_budget), 'num'),
            td(el('span', { 'class': 'badge ' + (t.blocked ? 'bad' : 'ok'), text: t.blocked ? 'blocked' : 'active' })), acts);
        });
        body.appendChild(table(['Team', 'Alias', 'Spend', 'Budget', 'Status', ''], rows, 'No teams yet.'));
      }, function (err) { if (current(gen)) clear(body).appendChild(errorBox(err)); });
    }

    // members lists the team's users and its keys; admins add and remove
    // members (membership is kept on users: /user/update teams).
    function members(t) {
      var box = el('div', null, el('p', { 'class': 'loading', text: 'Loading…' }));
      var p = panel(root, 'Team ' + t.team_id, box);
      var calls = [api('GET', 'team/info', { query: { team_id: t.team_id } })];
      if (seesAll()) calls.push(api('GET', 'user/list', { query: { page_size: 100 } }));
      Promise.all(calls).then(function (rs) {
        clear(box);
        var info = rs[0];
        if (rs[1]) {
          var users = (rs[1].users || []).filter(function (u) { return (u.teams || []).indexOf(t.team_id) >= 0; });
          add(box, el('h3', { text: 'Members' }));
          add(box, table(['User', 'Role', ''], users.map(function (u) {
            return el('tr', null, td(u.user_id), td(dash(u.user_role)), td(admin ? el('button', { type: 'button', text: 'Remove', onclick: function () {
              setMember(t, u.user_id, false).then(function () { p.close(); members(t); }, function (e) { box.appendChild(errorBox(e)); });
            } }) : ''));
          }), 'No members.'));
          if (admin) {
            var f = el('form', { 'class': 'row' }, formFields([{ name: 'user_id', label: 'Add user id' }]), el('button', { type: 'submit', text: 'Add member' }));
            f.addEventListener('submit', function (e) {
              e.preventDefault();
              var v = readForm(f);
              if (!v.user_id) return;
              setMember(t, v.user_id, true).then(function () { p.close(); members(t); }, function (x) { box.appendChild(errorBox(x)); });
            });
            add(box, f);
          }
        }
        add(box, el('h3', { text: 'Keys' }));
        add(box, table(['Alias', 'Key', 'User'], (info.keys || []).map(function (k) {
          return el('tr', null, td(dash(k.key_alias)), td(el('code', { text: dash(k.key_name) })), td(dash(k.user_id)));
        }), 'No keys in this team.'));
      }, function (err) { clear(box).appendChild(errorBox(err)); });
    }

    // setMember adds or removes team t for a user: membership is the
    // user's teams list.
    function setMember(t, userId, on) {
      return api('GET', 'user/info', { query: { user_id: userId } }).then(function (r) {
        var teams = ((r.user_info || {}).teams || []).filter(function (x) { return x !== t.team_id; });
        if (on) teams.push(t.team_id);
        return api('POST', 'user/update', { body: { user_id: userId, teams: teams } });
      });
    }
    load();
  };

  // ---------- usage ----------
  views.usage = function (root, gen) {
    var today = new Date();
    var from = new Date(today.getTime() - 29 * 86400000);
    var q = { group_by: 'key', start_date: day(from), end_date: day(today) };
    header(root, 'Usage', []);
    var controls = el('form', { 'class': 'filters' },
      el('div', { 'class': 'field' }, el('label', { 'for': 'u-group', text: 'Per' }),
        el('select', { id: 'u-group', name: 'group_by' }, ['key', 'user', 'team', 'endpoint'].map(function (g) { return el('option', { value: g, text: g }); }))),
      el('div', { 'class': 'field' }, el('label', { 'for': 'u-from', text: 'From' }), el('input', { id: 'u-from', type: 'date', name: 'start_date', value: q.start_date })),
      el('div', { 'class': 'field' }, el('label', { 'for': 'u-to', text: 'To' }), el('input', { id: 'u-to', type: 'date', name: 'end_date', value: q.end_date })),
      el('button', { type: 'submit', text: 'Show' }));
    controls.addEventListener('submit', function (e) {
      e.preventDefault();
      q.group_by = controls.group_by.value; q.start_date = controls.start_date.value; q.end_date = controls.end_date.value;
      loadCharts();
    });
    var charts = el('div', { 'class': 'charts' });
    var logs = el('div');
    root.appendChild(controls);
    root.appendChild(charts);
    root.appendChild(el('h2', { text: 'Recent requests' }));
    var lf = el('form', { 'class': 'filters', role: 'search' }, formFields([
      { name: 'api_key', label: 'Key token' }, { name: 'user_id', label: 'User id' }, { name: 'request_id', label: 'Request id' }]),
      el('button', { type: 'submit', text: 'Filter' }));
    var lq = {};
    lf.addEventListener('submit', function (e) { e.preventDefault(); lq = readForm(lf); loadLogs(null, true); });
    root.appendChild(lf);
    root.appendChild(logs);

    function loadCharts() {
      clear(charts).appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
      var calls = [api('GET', 'spend/daily', { query: q })];
      if (q.group_by === 'key') {
        calls.push(api('GET', 'key/list', { query: { size: 100, return_full_object: 'true' } }).then(null, function () { return { keys: [] }; }));
      }
      Promise.all(calls).then(function (rs) {
        if (!current(gen)) return;
        var names = {};
        ((rs[1] && rs[1].keys) || []).forEach(function (k) {
          if (typeof k === 'object') names[k.token_id || k.token] = k.key_alias || k.key_name;
        });
        drawUsage(clear(charts), rs[0], names);
      }, function (err) { if (current(gen)) clear(charts).appendChild(errorBox(err)); });
    }

    var cursor = null;
    function loadLogs(next, reset) {
      if (reset) cursor = null;
      var query = { limit: 50, start_date: q.start_date, end_date: q.end_date, cursor: next || '' };
      Object.keys(lq).forEach(function (k) { query[k] = lq[k]; });
      clear(logs).appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
      api('GET', 'spend/logs', { query: query, headers: true }).then(function (r) {
        if (!current(gen)) return;
        clear(logs);
        var recs = Array.isArray(r.body) ? r.body : [];
        cursor = r.headers.get('X-Keyway-Next-Cursor');
        logs.appendChild(table(['Time', 'Request', 'Endpoint', 'Key', 'User', 'Team', 'Status', 'Tokens', 'Spend'], recs.map(function (s) {
          return el('tr', null, td(when(s.startTime)), td(el('code', { text: dash(s.request_id) })), td(dash(s.endpoint)),
            td(el('code', { text: s.api_key ? String(s.api_key).slice(0, 12) + '…' : '—' })), td(dash(s.user)), td(dash(s.team_id)),
            td(dash(s.status_code || s.status)), td(num(s.total_tokens), 'num'), td(money(s.spend), 'num'));
        }), 'No requests in this period.'));
        if (cursor) logs.appendChild(el('div', { 'class': 'pager' }, el('button', { type: 'button', text: 'Older ›', onclick: function () { loadLogs(cursor); } })));
      }, function (err) { if (current(gen)) clear(logs).appendChild(errorBox(err)); });
    }
    loadCharts();
    loadLogs(null, true);
  };

  // drawUsage draws spend and tokens per day, stacked by the top five ids,
  // and the top spenders, as SVG made here (no chart library).
  function drawUsage(root, data, names) {
    var days = (data && data.days) || [];
    var label = function (id) { return names[id] || id || '(none)'; };
    var totals = {};
    days.forEach(function (d) { totals[d.id] = (totals[d.id] || 0) + Number(d.spend || 0); });
    var ranked = Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a]; });
    var top = ranked.slice(0, 5);
    var series = top.concat(ranked.length > 5 ? ['(other)'] : []);
    var dates = [];
    var start = new Date((data && data.start_date) || (days[0] && days[0].date) || day(new Date()));
    var end = new Date((data && data.end_date) || day(new Date()));
    for (var t = start.getTime(); t <= end.getTime() && dates.length < 400; t += 86400000) dates.push(day(new Date(t)));
    function matrix(val) {
      var m = {};
      dates.forEach(function (d) { m[d] = {}; });
      days.forEach(function (d) {
        var s = top.indexOf(d.id) >= 0 ? d.id : '(other)';
        if (!m[d.date]) return;
        m[d.date][s] = (m[d.date][s] || 0) + val(d);
      });
      return m;
    }
    var spendM = matrix(function (d) { return Number(d.spend || 0); });
    var tokM = matrix(function (d) { return Number(d.prompt_tokens || 0) + Number(d.completion_tokens || 0); });
    var legend = el('ul', { 'class': 'legend' }, series.map(function (s, i) {
      return el('li', null, el('span', { 'class': 'swatch s' + i }), label(s));
    }));
    root.appendChild(el('section', { 'class': 'chart-card' }, el('h2', { text: 'Spend per day, by ' + data.group_by }),
      barChart(dates, series, spendM, money, 'spend', label), legend));
    root.appendChild(el('section', { 'class': 'chart-card' }, el('h2', { text: 'Tokens per day, by ' + data.group_by }),
      barChart(dates, series, tokM, num, 'tokens', label), legend.cloneNode(true)));
    var topList = ranked.slice(0, 10);
    var max = topList.length ? totals[topList[0]] : 0;
    var reqs = {};
    days.forEach(function (d) { reqs[d.id] = (reqs[d.id] || 0) + Number(d.requests || 0); });
    var rows = topList.map(function (id) {
      var w = max > 0 ? Math.max(1, Math.round(100 * totals[id] / max)) : 0;
      return el('tr', null, td(label(id)), td(money(totals[id]), 'num'), td(num(reqs[id]), 'num'),
        td(svg('svg', { 'class': 'hbar', viewBox: '0 0 100 8', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
          svg('rect', { x: 0, y: 0, width: w, height: 8, 'class': 's0' }))));
    });
    root.appendChild(el('section', { 'class': 'chart-card wide' }, el('h2', { text: 'Top spenders by ' + data.group_by }),
      table([data.group_by, 'Spend', 'Requests', ''], rows, 'No spend in this period.')));
  }

  function barChart(dates, series, m, fmt, what, label) {
    var W = 600, H = 220, pad = { l: 60, r: 8, t: 10, b: 24 };
    var totals = dates.map(function (d) { return series.reduce(function (a, s) { return a + (m[d][s] || 0); }, 0); });
    var max = Math.max.apply(null, totals.concat([0]));
    var nonzero = totals.filter(function (x) { return x > 0; }).length;
    var chart = svg('svg', { 'class': 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': what + ' per day: ' + (max > 0 ? 'largest day ' + fmt(max) : 'no data'), 'data-bars': nonzero });
    var iw = W - pad.l - pad.r, ih = H - pad.t - pad.b;
    var scale = max > 0 ? ih / max : 0;
    [0, 0.5, 1].forEach(function (f) {
      var y = pad.t + ih - f * ih;
      chart.appendChild(svg('line', { x1: pad.l, x2: W - pad.r, y1: y, y2: y, 'class': 'grid' }));
      chart.appendChild(svg('text', { x: pad.l - 4, y: y + 4, 'class': 'axis', 'text-anchor': 'end', text: fmt(max * f) }));
    });
    var bw = iw / Math.max(dates.length, 1);
    dates.forEach(function (d, i) {
      var y = pad.t + ih;
      var x = pad.l + i * bw + bw * 0.1;
      series.forEach(function (s, si) {
        var v = m[d][s] || 0;
        if (v <= 0) return;
        var h = Math.max(v * scale, 1);
        y -= h;
        chart.appendChild(svg('rect', { x: x.toFixed(1), y: y.toFixed(1), width: Math.max(bw * 0.8, 1).toFixed(1), height: h.toFixed(1), 'class': 'bar s' + si },
          svg('title', { text: d + ' · ' + label(s) + ': ' + fmt(v) })));
      });
      if (i === 0 || i === dates.length - 1 || (dates.length > 7 && i % Math.ceil(dates.length / 6) === 0 && i < dates.length - 3)) {
        chart.appendChild(svg('text', { x: (pad.l + i * bw + bw / 2).toFixed(1), y: H - 6, 'class': 'axis', 'text-anchor': 'middle', text: d.slice(5) }));
      }
    });
    return chart;
  }

  // ---------- endpoints ----------
  views.endpoints = function (root, gen) {
    header(root, 'Endpoints', []);
    var body = el('div', null, el('p', { 'class': 'loading', text: 'Loading…' }));
    root.appendChild(body);
    api('GET', 'config/pass_through_endpoint').then(function (r) {
      if (!current(gen)) return;
      clear(body);
      var rows = (r.endpoints || []).map(function (e) {
        var k = e.keyway || {};
        var prices = [];
        if (e.cost_per_request) prices.push(money(e.cost_per_request) + ' / request');
        if (k.input_cost_per_token) prices.push('$' + k.input_cost_per_token + ' / input token');
        if (k.output_cost_per_token) prices.push('$' + k.output_cost_per_token + ' / output token');
        if (k.model_costs) prices.push(Object.keys(k.model_costs).length + ' model price(s)');
        return el('tr', null, td(el('code', { text: e.path + (e.include_subpath ? '/…' : '') })), td(dash(e.target)),
          td(e.auth ? 'key required' : 'public'), td((e.methods || []).join(' ')), td(prices.join('; ') || 'free'),
          td(dash(k.usage)), td(dash((e.header_names || []).join(', '))));
      });
      body.appendChild(table(['Path', 'Target', 'Auth', 'Methods', 'Pricing', 'Usage', 'Headers set'], rows, 'No pass-through endpoints configured.'));
      body.appendChild(el('p', { 'class': 'muted', text: 'Read-only: edit the config (file or SSM parameter) to change endpoints. Header values are never shown.' }));
    }, function (err) { if (current(gen)) clear(body).appendChild(errorBox(err)); });
  };

  // ---------- start ----------
  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var key = $('login-key').value.trim();
    if (key) login(key);
  });
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  var saved = null;
  try { saved = sessionStorage.getItem(STORE); } catch (e) { saved = null; }
  if (saved) {
    identify(saved).then(function (who) { state.key = saved; state.who = who; enter(); }, function () { logout(); });
  } else {
    $('login-key').focus();
  }
})();
