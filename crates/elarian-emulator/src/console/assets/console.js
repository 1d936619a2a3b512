// The console's script. The server renders every section; this keeps them current and submits
// the phone's forms without a reload. A section marked data-fragment="URL" data-watch="KIND[:id]"
// is fetched again from URL (server HTML) when the event stream (/api/events) reports a change
// of that kind; bursts of events cause one fetch per section at most every GAP ms.
(() => {
  'use strict';
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
  const GAP = { campaigns: 1000 };
  const DEFAULT_GAP = 250;

  const login = $('#login');
  if (login) {
    login.addEventListener('submit', (e) => {
      e.preventDefault();
      document.cookie = `elarian_console_token=${encodeURIComponent(login.token.value)}; path=/; SameSite=Strict`;
      location.reload();
    });
    return;
  }
  const orgSelect = $('#org');
  const org = orgSelect ? orgSelect.value : '';
  if (orgSelect) orgSelect.addEventListener('change', () => $('#org-form').submit());

  const scrollThreads = () => $$('.thread .msgs').forEach((el) => { el.scrollTop = el.scrollHeight; });

  // One refresher per live section: at most one fetch in flight, a trailing one if dirtied.
  function refresher(el) {
    const gap = GAP[el.dataset.watch.split(':')[0]] || DEFAULT_GAP;
    let busy = false, again = false, timer = null, last = 0;
    const run = async () => {
      timer = null;
      if (busy) { again = true; return; }
      busy = true; last = Date.now();
      try {
        const res = await fetch(el.dataset.fragment, { headers: { Accept: 'text/html' }, cache: 'no-store' });
        // The access token was changed or dropped: the reload asks for it.
        if (res.status === 401) { location.reload(); return; }
        el.innerHTML = await res.text();
        scrollThreads();
      } catch (err) { console.warn('refresh failed', err); }
      busy = false;
      if (again) { again = false; schedule(); }
    };
    const schedule = () => { if (!timer) timer = setTimeout(run, Math.max(0, gap - (Date.now() - last))); };
    return schedule;
  }
  const sections = $$('[data-fragment]').map((el) => ({ el, refresh: refresher(el) }));
  const refreshAll = () => sections.forEach((s) => s.refresh());

  function wants(watch, ev) {
    const at = watch.indexOf(':');
    const kind = at < 0 ? watch : watch.slice(0, at);
    const id = at < 0 ? '' : watch.slice(at + 1);
    if (ev.type === 'resync') return kind !== '';
    const changed = ev.type === 'changed';
    switch (kind) {
      case 'list': case 'campaigns': return changed;
      case 'customer': return (changed && (ev.many || ev.customers.includes(id))) || (ev.type === 'notification' && ev.customer === id);
      case 'payments': return changed && (ev.payments || ev.many);
      case 'connections': return ev.type === 'connection';
      case 'notifications': return ev.type === 'notification';
      default: return false;
    }
  }

  // The stream is closed when the page is left: a page kept in the back/forward cache would
  // otherwise hold one of the browser's few connections to the console.
  const live = $('#live');
  let events = null;
  const subscribe = () => {
    events = new EventSource('/api/events');
    events.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
    events.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off'; };
    events.onmessage = onEvent;
  };
  window.addEventListener('pagehide', () => { if (events) events.close(); events = null; live.textContent = 'offline'; live.className = 'live off'; });
  window.addEventListener('pageshow', (e) => { if (e.persisted || !events) subscribe(); });
  function onEvent(m) {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    if (ev.type === 'rate') {
      $('#rate').textContent = `${ev.commands_per_sec} cmd/s`;
      const cps = $('#cps'), total = $('#total-cmds');
      if (cps) cps.textContent = ev.commands_per_sec;
      if (total) total.textContent = Number(total.textContent) + ev.commands_per_sec;
      return;
    }
    if (ev.org && org && ev.org !== org) return;
    sections.forEach((s) => { if (wants(s.el.dataset.watch, ev)) s.refresh(); });
  }
  subscribe();

  // The customer list's filter: the URL and the list follow what is typed.
  const search = $('#search');
  if (search) {
    const list = $('#customer-list');
    let timer = null;
    const filter = () => {
      const q = search.value.trim();
      const page = new URL(location.href), frag = new URL(list.dataset.fragment, location.href);
      for (const u of [page, frag]) { if (q) u.searchParams.set('q', q); else u.searchParams.delete('q'); }
      history.replaceState(null, '', page);
      list.dataset.fragment = frag.pathname + frag.search;
      sections.find((s) => s.el === list).refresh();
    };
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(filter, 200); });
    $('#filter').addEventListener('submit', (e) => { e.preventDefault(); filter(); });
  }

  // ---- Being the customer: the forms post JSON to /api/simulate/... ----
  async function api(path, body) {
    const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const json = await res.json().catch(() => ({ error: res.statusText }));
    if (!res.ok) throw new Error(json.error || res.statusText);
    return json;
  }
  const outcome = (r, ok) => (r.status ? ok : `Not accepted: ${r.description}`);
  const channelOf = (value) => { const at = value.indexOf('|'); return { channel: value.slice(0, at), channel_number: value.slice(at + 1) }; };

  const fresh = $('#new-customer');
  if (fresh) {
    fresh.addEventListener('submit', async (e) => {
      e.preventDefault();
      const out = $('#new-result');
      try {
        const r = await api('/api/simulate/message', { org: fresh.dataset.org || null, customer_number: fresh.customer_number.value.trim(), ...channelOf(fresh.channel.value), text: fresh.text.value });
        out.textContent = outcome(r, `Sent. ${r.reply ? 'App replied: ' + r.reply : r.description}`);
        fresh.text.value = '';
      } catch (err) { out.textContent = err.message; }
      refreshAll();
    });
  }

  const phone = $('.phone');
  if (!phone) return;
  const result = (text, err) => { const p = $('#phone-result'); p.textContent = text; p.className = 'result ' + (err ? 'err' : 'muted'); };
  const who = () => ({ org: phone.dataset.org || null, app: $('#phone-app').value, customer_number: $('#phone-number').value });
  const act = async (path, body, ok, then) => {
    try {
      const r = await api(path, { ...who(), ...body });
      result(outcome(r, typeof ok === 'function' ? ok(r) : ok), !r.status);
      if (then) then(r);
    } catch (err) { result(err.message, true); }
    refreshAll();
  };

  $$('.tabs button', phone).forEach((b) => b.addEventListener('click', () => {
    $$('.tabs button', phone).forEach((x) => x.classList.toggle('on', x === b));
    $$('form', phone).forEach((f) => f.classList.toggle('on', f.id === b.dataset.tab));
  }));

  const msg = $('#msg');
  msg.addEventListener('submit', (e) => {
    e.preventDefault();
    act('/api/simulate/message', { ...channelOf(msg.channel.value), text: msg.text.value, subject: msg.subject.value || null },
      (r) => (r.reply ? `App replied: ${r.reply}` : r.description), () => { msg.text.value = ''; });
  });

  const ussd = $('#ussd');
  const ussdStep = (body) => act('/api/simulate/ussd', { code: ussd.code.value, ...body }, '', (r) => {
    const open = r.status && !r.terminal && !body.cancel && r.reply != null;
    ussd.session_id.value = open ? r.session_id : '';
    const screen = $('#ussd-screen');
    screen.textContent = r.reply ?? (body.cancel ? 'Session ended.' : r.description);
    if (!open && !body.cancel && r.reply) screen.textContent += '\n\n— session ended —';
    ussd.send.disabled = !open; ussd.cancel.disabled = !open; ussd.dial.disabled = open;
    ussd.text.value = '';
  });
  ussd.addEventListener('submit', (e) => {
    e.preventDefault();
    const session = ussd.session_id.value;
    if ((e.submitter && e.submitter.name === 'dial') || !session) ussdStep({ text: '' });
    else ussdStep({ session_id: session, text: ussd.text.value });
  });
  ussd.cancel.addEventListener('click', () => ussd.session_id.value && ussdStep({ session_id: ussd.session_id.value, cancel: true }));

  // A call the app placed (the server marks it #call) is answered in its session.
  const voice = $('#voice');
  let callNumber = '';
  const voiceStep = (action, digits) => {
    const ringing = $('#call');
    if (action === 'answer' && ringing && !voice.session_id.value) {
      voice.session_id.value = ringing.dataset.session;
      callNumber = ringing.dataset.number;
    }
    const number = (voice.session_id.value && callNumber) || voice.channel_number.value;
    act('/api/simulate/voice', { channel_number: number, session_id: voice.session_id.value || null, action, digits }, '', (r) => {
      const screen = $('#voice-screen');
      if (action === 'hangup') { voice.session_id.value = ''; callNumber = ''; screen.textContent = 'Call ended.'; return; }
      voice.session_id.value = r.session_id; callNumber = number;
      screen.textContent = `In call with ${number}\n${r.reply ? '▶ ' + r.reply : '(the app sent no dialplan)'}`;
    });
  };
  voice.addEventListener('submit', (e) => { e.preventDefault(); voiceStep('answer'); });
  voice.press.addEventListener('click', () => { voiceStep('digits', voice.digits.value); voice.digits.value = ''; });
  voice.hangup.addEventListener('click', () => voiceStep('hangup'));

  const pay = $('#pay');
  pay.addEventListener('submit', (e) => {
    e.preventDefault();
    act('/api/simulate/payment', { channel_number: pay.channel_number.value, currency: pay.currency.value, amount: Number(pay.amount.value) }, 'Payment sent.');
  });
  // Checkout prompts are server-rendered in #customer-phone; their buttons answer them.
  phone.addEventListener('click', (e) => {
    const t = e.target.dataset && (e.target.dataset.approve || e.target.dataset.decline);
    if (!t) return;
    act('/api/simulate/payments/' + encodeURIComponent(t), { status: e.target.dataset.approve ? 'success' : 'failed' }, 'Answered the checkout prompt.');
  });
  scrollThreads();
})();
