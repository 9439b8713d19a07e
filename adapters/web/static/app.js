/*
 * Baton local web chat — browser side.
 *
 * Protocol (served by Baton itself):
 *   GET  /api/local/people             → people one can chat as
 *   GET  /api/local/stream?person=ID&greet=1 → SSE; each `message` event is one outbound Baton message
 *                                      (greet: someone Baton has never written to is welcomed once).
 *                                        The last page of history is replayed first (ids may repeat after
 *                                        a reconnect), then `ready` {more, live}; `live` {live} follows
 *                                        whenever the buttons that still do something change.
 *   GET  /api/local/history?person=ID&before=MSG → {messages, more, live}: an earlier page.
 *   POST /api/local/messages           → the user's text or button choice; 202 {"ok": true}.
 *                                        Replies arrive through the stream, never in this response.
 *
 * Everything that comes from the server is inserted as text nodes, never as HTML.
 */
"use strict";

(() => {
  const DEFAULT_PLACEHOLDER = "Message Baton… (try help)";
  const STORAGE_KEY = "baton.local.person";
  // The person's own side of the conversation stays in this browser (the server keeps no transcript
  // of what people type): [{after, text, answers, label}], newest last, at most MAX_MINE.
  const MINE_KEY = "baton.local.mine.";
  const MAX_MINE = 400;
  const COMMAND_ACTION = "cmd";
  const POST_TIMEOUT_MS = 15000;
  const AUTO_RETRIES = 8; // a 503 (Baton's database restarting) or a dropped connection: sent again by itself
  const AUTO_RETRY_MAX_MS = 30000;
  const REOPEN_MIN_MS = 1000;
  const REOPEN_MAX_MS = 30000;
  const NEAR_BOTTOM_PX = 48;
  const MAX_RATING_STEPS = 20; // guards against a malformed rating drawing hundreds of buttons
  const ROLE_GROUPS = [["manager", "Managers"], ["performer", "Performers"], ["admin", "Admins"]];
  // Slack-style *bold*: the marked text must start and end with a non-space, so "5 * 3 * 2" stays as is.
  const BOLD = /\*(\S(?:[^*\n]*?\S)?)\*/g;

  const els = {
    person: document.getElementById("person"),
    status: document.getElementById("status"),
    transcript: document.getElementById("transcript"),
    jump: document.getElementById("jump"),
    form: document.getElementById("composer-form"),
    composer: document.getElementById("composer"),
    send: document.getElementById("send"),
    hint: document.getElementById("composer-hint"),
    counter: document.getElementById("counter"),
    limitNote: document.getElementById("limit-note"),
  };

  const state = {
    people: new Map(),      // id (as string, like <option> values) → person object
    person: null,           // the person currently chatted as
    session: 0,             // bumped on every person switch; late callbacks of an older one are dropped
    stream: null,           // the current EventSource
    reopenTimer: null,
    reopenDelay: REOPEN_MIN_MS,
    seenIds: new Set(),     // Baton message ids already rendered in this transcript
    latestBotId: -Infinity, // the newest Baton message decides the composer's input settings
    input: null,            // that message's `input` spec, or null
    formats: null,          // timestamp formatters in the person's time zone
    groups: new Map(),      // Baton message id → its button group {answered, buttons, action}
    live: null,             // the dialog actions whose buttons still do something (null: not known yet)
    placed: new Set(),      // client ids of own entries already in the transcript
    lastBotId: null,        // the bottom-most Baton message: what the next own message answers
  };

  // ---------------------------------------------------------------- small DOM helpers

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  // Web addresses in Baton's own messages (a dashboard sign-in link) become links; only http(s).
  const URL_PATTERN = /https?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)]/g;

  /** Append `text` to `node`, turning web addresses into <a> elements (built as DOM nodes, never HTML). */
  function appendLinked(node, text) {
    let last = 0;
    for (const match of text.matchAll(URL_PATTERN)) {
      const link = make("a", null, match[0]);
      link.href = match[0];
      link.rel = "noopener noreferrer";
      node.append(text.slice(last, match.index), link);
      last = match.index + match[0].length;
    }
    node.append(text.slice(last));
  }

  /** Baton's plain text: newlines are kept by CSS (white-space: pre-wrap), *x* becomes <strong>. */
  function richText(text, className = "text", tag = "div") {
    const node = make(tag, className);
    const source = String(text);
    let last = 0;
    for (const match of source.matchAll(BOLD)) {
      appendLinked(node, source.slice(last, match.index));
      node.append(make("strong", null, match[1]));
      last = match.index + match[0].length;
    }
    appendLinked(node, source.slice(last));
    return node;
  }

  // ---------------------------------------------------------------- timestamps

  function makeFormats(timeZone) {
    const build = (zone) => ({
      zone,
      time: new Intl.DateTimeFormat(undefined, { timeZone: zone, hour: "2-digit", minute: "2-digit" }),
      dateTime: new Intl.DateTimeFormat(undefined, {
        timeZone: zone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      }),
      day: new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }),
      full: new Intl.DateTimeFormat(undefined, { timeZone: zone, dateStyle: "full", timeStyle: "short" }),
    });
    try {
      return build(timeZone || undefined);
    } catch {
      return build(undefined); // unknown zone name: fall back to the browser's own zone
    }
  }

  /** "Baton · 19:52" — shown in the person's time zone, so check-in times read as they would for them. */
  function renderMeta(who, iso) {
    const meta = make("div", "meta");
    const parsed = iso ? new Date(iso) : new Date();
    const when = Number.isNaN(parsed.getTime()) ? new Date() : parsed;
    const f = state.formats || makeFormats();
    const today = f.day.format(new Date()) === f.day.format(when);
    const time = make("time", null, today ? f.time.format(when) : f.dateTime.format(when));
    time.dateTime = when.toISOString();
    time.title = f.full.format(when) + (f.zone ? ` (${f.zone})` : "");
    meta.append(make("span", "who", who), " · ", time);
    return meta;
  }

  // ---------------------------------------------------------------- transcript & scrolling

  function isNearBottom() {
    const t = els.transcript;
    return t.scrollHeight - t.scrollTop - t.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    els.transcript.scrollTop = els.transcript.scrollHeight;
    els.jump.hidden = true;
  }

  /** Appends to the transcript; follows the bottom unless the user has scrolled up to read. */
  function appendEntry(node, { follow = false } = {}) {
    const stick = follow || isNearBottom();
    els.transcript.append(node);
    if (stick) scrollToBottom();
    else els.jump.hidden = false;
  }

  function addSystemNote(text) {
    const note = make("div", "msg system");
    note.append(make("div", "text", text));
    appendEntry(note);
  }

  // ---------------------------------------------------------------- Baton's messages

  function renderBotMessage(msg) {
    const node = make("div", "msg bot");
    node.dataset.id = String(msg.id);
    node.dataset.at = msg.created_at || "";
    // One group per message: a click on any of its buttons (choice or rating) answers the whole message.
    const action =
      (msg.rating && msg.rating.action) || (msg.form && msg.form.action) || (msg.choices && msg.choices[0]?.action);
    const group = { answered: false, buttons: [], action: action || null, id: msg.id };
    state.groups.set(String(msg.id), group);

    if (msg.text) node.append(richText(msg.text, "bubble text"));
    if (msg.card) node.append(renderCard(msg.card));
    if (msg.rating) node.append(renderRating(msg.rating, group));
    if (msg.form && Array.isArray(msg.form.fields)) node.append(renderForm(msg.form, group));
    if (Array.isArray(msg.choices) && msg.choices.length) node.append(renderChoices(msg.choices, group));
    node.append(renderMeta("Baton", msg.created_at));
    return node;
  }

  function renderCard(card) {
    const section = make("section", "card");
    if (card.title) section.append(make("h2", "card-title", card.title));
    if (Array.isArray(card.fields) && card.fields.length) {
      const list = make("dl", "card-fields");
      for (const field of card.fields) {
        const row = make("div", "card-field");
        row.append(richText(field.label ?? "", "card-label", "dt"), richText(field.value ?? "", "card-value", "dd"));
        list.append(row);
      }
      section.append(list);
    }
    if (Array.isArray(card.lines) && card.lines.length) {
      const lines = make("div", "card-lines");
      for (const line of card.lines) lines.append(richText(line ?? "", "card-line"));
      section.append(lines);
    }
    return section;
  }

  /** All questions at once: one input per field, sent as one JSON answer (the dialog validates it). */
  function renderForm(form, group) {
    const element = make("form", "card form");
    if (form.title) element.append(make("h2", "card-title", form.title));
    const inputs = [];
    form.fields.forEach((field, index) => {
      const id = `f-${newClientId()}-${index}`;
      const label = make("label", "form-label", field.label ?? "");
      label.htmlFor = id;
      let input;
      if (field.kind === "choice" || field.kind === "rating") {
        input = make("select", "form-input");
        const options = field.kind === "rating" ? ["1", "2", "3", "4", "5"] : field.options || [];
        input.append(make("option", null, field.optional ? "—" : "Pick one"));
        input.options[0].value = "";
        for (const option of options) {
          const item = make("option", null, option);
          item.value = option;
          input.append(item);
        }
      } else {
        input = make(field.kind === "number" ? "input" : "textarea", "form-input");
        if (field.kind === "number") input.type = "text";
        if (Number.isInteger(field.max_length)) input.maxLength = field.max_length;
      }
      input.id = id;
      input.name = field.id;
      if (field.value != null) input.value = String(field.value);
      inputs.push(input);
      element.append(label, input);
    });
    const submit = make("button", "choice primary", form.submit_label || "Submit");
    submit.type = "submit";
    group.buttons.push(submit, ...inputs);
    element.append(submit);
    element.addEventListener("submit", (event) => {
      event.preventDefault();
      if (group.answered) return;
      const answers = {};
      for (const input of inputs) if (input.value.trim()) answers[input.name] = input.value;
      markAnswered(group, submit);
      sendMessage(
        { action: form.action, value: JSON.stringify(answers) },
        form.submit_label || "Submit",
        () => unmarkAnswered(group),
        group,
      );
    });
    return element;
  }

  function renderChoices(choices, group) {
    const row = make("div", "choices");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Choices");
    for (const choice of choices) {
      const button = makeChoiceButton(group, choice.label ?? String(choice.value ?? ""), choice.action, choice.value);
      if (choice.style === "primary" || choice.style === "danger") button.classList.add(choice.style);
      row.append(button);
    }
    return row;
  }

  function renderRating(rating, group) {
    const min = Number.isInteger(rating.min) ? rating.min : 1;
    const max = Number.isInteger(rating.max) ? Math.min(rating.max, min + MAX_RATING_STEPS - 1) : 5;
    const wrap = make("div", "rating");
    wrap.setAttribute("role", "group");
    const low = rating.low_label ? ` (${rating.low_label})` : "";
    const high = rating.high_label ? ` (${rating.high_label})` : "";
    wrap.setAttribute("aria-label", `Rate from ${min}${low} to ${max}${high}`);

    const scale = make("div", "rating-scale");
    for (let n = min; n <= max; n++) {
      const button = makeChoiceButton(group, String(n), rating.action, String(n));
      if (n === min && rating.low_label) button.setAttribute("aria-label", `${n} — ${rating.low_label}`);
      if (n === max && rating.high_label) button.setAttribute("aria-label", `${n} — ${rating.high_label}`);
      scale.append(button);
    }
    // The end labels repeat what the buttons' aria-labels already say, so hide them from screen readers.
    const lowLabel = make("span", "rating-low", rating.low_label || "");
    const highLabel = make("span", "rating-high", rating.high_label || "");
    lowLabel.setAttribute("aria-hidden", "true");
    highLabel.setAttribute("aria-hidden", "true");
    wrap.append(lowLabel, scale, highLabel);
    return wrap;
  }

  function makeChoiceButton(group, label, action, value) {
    const button = make("button", "choice", label);
    button.type = "button";
    button.dataset.value = value == null ? "" : String(value);
    button.addEventListener("click", () => {
      // The flag is set synchronously, so the second click of a double click finds it already answered.
      if (group.answered) return;
      markAnswered(group, button);
      sendMessage({ action, value: value == null ? null : String(value) }, label, () => unmarkAnswered(group), group);
    });
    group.buttons.push(button);
    return button;
  }

  function markAnswered(group, chosen) {
    group.answered = true;
    for (const button of group.buttons) button.disabled = true;
    if (!chosen) return;
    chosen.classList.add("chosen");
    chosen.setAttribute("aria-pressed", "true");
  }

  /** Buttons of a question that was answered or superseded elsewhere (another tab, the terminal, a reload). */
  function applyLive() {
    if (!state.live) return;
    for (const group of state.groups.values()) {
      if (group.answered || !group.action || group.action === COMMAND_ACTION) continue;
      if (!state.live.has(group.action)) markAnswered(group, null);
    }
  }

  /** After a polite refusal (4xx) the choice did not count, so let the user pick again. */
  function unmarkAnswered(group) {
    group.answered = false;
    for (const button of group.buttons) {
      button.disabled = false;
      button.classList.remove("chosen");
      button.removeAttribute("aria-pressed");
    }
  }

  function handleStreamData(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn("Baton: ignoring a stream event that is not JSON", data);
      return;
    }
    if (!msg || msg.id == null) return;
    const key = String(msg.id);
    if (state.seenIds.has(key)) return; // replayed after a reconnect
    state.seenIds.add(key);
    appendEntry(renderBotMessage(msg));
    state.lastBotId = msg.id;
    if (Number(msg.id) >= state.latestBotId) {
      state.latestBotId = Number(msg.id);
      applyInputSpec(msg.input);
    }
  }

  function parseJson(data) {
    try {
      return JSON.parse(data);
    } catch {
      return null;
    }
  }

  /** History is in: put the person's own messages back in place, disable what is no longer live, go to the end. */
  function handleReady(data) {
    const info = parseJson(data) || {};
    state.live = new Set(Array.isArray(info.live) ? info.live : []);
    if (!els.transcript.dataset.ready) setEarlier(Boolean(info.more));
    placeMine(Boolean(info.more));
    applyLive();
    els.transcript.dataset.ready = "1";
    scrollToBottom();
    requestAnimationFrame(scrollToBottom); // again once fonts and wrapping have settled (phones)
  }

  function handleLive(data) {
    const info = parseJson(data);
    if (!info || !Array.isArray(info.live)) return;
    state.live = new Set(info.live);
    applyLive();
  }

  // ---------------------------------------------------------------- the person's own side, kept in this browser

  function readMine() {
    if (!state.person) return [];
    try {
      const entries = JSON.parse(localStorage.getItem(MINE_KEY + state.person.id) || "[]");
      return Array.isArray(entries) ? entries : [];
    } catch {
      return [];
    }
  }

  function rememberMine(entry) {
    try {
      const entries = readMine();
      entries.push(entry);
      localStorage.setItem(MINE_KEY + state.person.id, JSON.stringify(entries.slice(-MAX_MINE)));
    } catch {
      // storage full or disabled: the message was still sent; only a reload won't show it
    }
  }

  function ownBubble(text) {
    const node = make("div", "msg user");
    const meta = make("div", "meta"); // no time: the browser's clock is not Baton's; the place says when
    meta.append(make("span", "who", "You"));
    node.append(make("div", "bubble text", text), meta);
    return node;
  }

  /**
   * Put own entries after the Baton message each one followed when it was sent. `complete`: the
   * transcript starts at the beginning of the history, so entries from before any message go on top.
   */
  function placeMine(more) {
    const entries = readMine();
    for (const entry of entries) {
      if (!entry || state.placed.has(entry.id)) continue;
      const group = entry.answers != null ? state.groups.get(String(entry.answers)) : null;
      if (group && !group.answered) {
        const chosen = group.buttons.find((b) => b.textContent === entry.label) || null;
        markAnswered(group, chosen);
      }
      let anchor = null;
      if (entry.after != null) {
        anchor = els.transcript.querySelector(`.msg.bot[data-id="${CSS.escape(String(entry.after))}"]`);
        if (!anchor) continue; // on an earlier page: placed when that page is loaded
      } else if (more) {
        continue;
      }
      // After the anchor and the own messages already placed after it, before the next Baton message.
      let at = anchor ? anchor.nextElementSibling : els.transcript.querySelector(".msg");
      while (at && at.classList.contains("user") && !at.dataset.clientId) at = at.nextElementSibling;
      els.transcript.insertBefore(ownBubble(String(entry.text ?? "")), at);
      state.placed.add(entry.id);
    }
  }

  // ---------------------------------------------------------------- earlier pages

  function setEarlier(more) {
    let button = document.getElementById("earlier");
    if (!more) {
      if (button) button.hidden = true;
      return;
    }
    if (!button) {
      button = make("button", "earlier", "Load earlier messages");
      button.id = "earlier";
      button.type = "button";
      button.addEventListener("click", loadEarlier);
    }
    button.hidden = false;
    els.transcript.prepend(button);
  }

  async function loadEarlier() {
    const button = document.getElementById("earlier");
    const first = els.transcript.querySelector(".msg.bot");
    if (!button || !first || !state.person) return;
    const session = state.session;
    button.disabled = true;
    button.textContent = "Loading…";
    let page = null;
    try {
      const url = `/api/local/history?person=${encodeURIComponent(state.person.id)}&before=${first.dataset.id}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) page = await response.json();
    } catch {
      // shown below
    }
    if (session !== state.session) return;
    button.disabled = false;
    button.textContent = "Load earlier messages";
    if (!page || !Array.isArray(page.messages)) {
      addSystemNote("Couldn't load earlier messages. Please try again in a moment.");
      return;
    }
    const t = els.transcript;
    const fromBottom = t.scrollHeight - t.scrollTop; // keep what the person is reading in place
    const fragment = document.createDocumentFragment();
    for (const msg of page.messages) {
      const key = String(msg.id);
      if (state.seenIds.has(key)) continue;
      state.seenIds.add(key);
      fragment.append(renderBotMessage(msg));
    }
    t.insertBefore(fragment, button.nextSibling);
    if (Array.isArray(page.live)) state.live = new Set(page.live);
    setEarlier(Boolean(page.more));
    placeMine(Boolean(page.more));
    applyLive();
    t.scrollTop = t.scrollHeight - fromBottom;
  }

  // ---------------------------------------------------------------- the SSE stream

  function setStatus(kind, text) {
    els.status.dataset.state = kind;
    els.status.textContent = text;
  }

  function openStream() {
    const es = new EventSource(`/api/local/stream?person=${encodeURIComponent(state.person.id)}&greet=1`);
    state.stream = es;
    setStatus("connecting", "connecting…");
    es.onopen = () => {
      if (es !== state.stream) return;
      state.reopenDelay = REOPEN_MIN_MS;
      setStatus("connected", "connected");
    };
    es.onmessage = (event) => {
      if (es === state.stream) handleStreamData(event.data);
    };
    es.addEventListener("ready", (event) => {
      if (es === state.stream) handleReady(event.data);
    });
    es.addEventListener("live", (event) => {
      if (es === state.stream) handleLive(event.data);
    });
    es.onerror = () => {
      if (es !== state.stream) return;
      setStatus("reconnecting", "reconnecting…");
      // While readyState is CONNECTING the browser retries by itself. It gives up for good (CLOSED)
      // on an HTTP error or a non-SSE response, e.g. while Baton restarts behind a proxy: retry then.
      if (es.readyState === EventSource.CLOSED) {
        state.reopenTimer = setTimeout(() => {
          state.reopenTimer = null;
          if (es === state.stream) openStream();
        }, state.reopenDelay);
        state.reopenDelay = Math.min(state.reopenDelay * 2, REOPEN_MAX_MS);
      }
    };
  }

  function closeStream() {
    clearTimeout(state.reopenTimer);
    state.reopenTimer = null;
    if (state.stream) state.stream.close();
    state.stream = null;
    state.reopenDelay = REOPEN_MIN_MS;
  }

  // ---------------------------------------------------------------- sending

  /** crypto.randomUUID needs a secure context (https or localhost); fall back for e.g. http://127.0.0.2. */
  function newClientId() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /**
   * Renders the user's bubble at once (the server does not echo it) and posts it.
   * `onRefused` runs if the server politely refuses it with a 4xx.
   */
  function sendMessage(fields, shownText, onRefused, group = null) {
    const node = make("div", "msg user");
    const status = make("span", "send-state");
    const meta = renderMeta("You", null);
    meta.append(status);
    node.append(make("div", "bubble text", shownText), meta);

    const outgoing = {
      session: state.session,
      // The client_id is made once here and reused by every retry, so the server can deduplicate.
      body: { person: state.person.id, client_id: newClientId(), ...fields },
      node,
      status,
      onRefused,
      // What a reload needs to put this message back in place: the Baton message it followed.
      mine: { after: state.lastBotId, text: shownText, answers: group ? group.id : null, label: shownText },
    };
    outgoing.mine.id = outgoing.body.client_id;
    node.dataset.clientId = outgoing.body.client_id;
    appendEntry(node, { follow: true });
    post(outgoing);
  }

  function setSendState(outgoing, kind) {
    outgoing.node.dataset.state = kind;
    const status = outgoing.status;
    status.replaceChildren();
    if (kind === "sending") status.append(" · sending…");
    else if (kind === "refused") status.append(" · not delivered");
    else if (kind === "waiting") status.append(" · Baton is busy, sending again…");
    else if (kind === "failed") {
      const retry = make("button", "retry", "retry");
      retry.type = "button";
      retry.setAttribute("aria-label", "Retry sending this message");
      retry.addEventListener("click", () => {
        retry.disabled = true; // one re-post per click, however fast the clicks come
        post(outgoing);
      });
      status.append(" · Not sent — ", retry);
    }
  }

  async function postJson(url, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), POST_TIMEOUT_MS);
    try {
      return await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async function post(outgoing) {
    setSendState(outgoing, "sending");
    let response = null;
    try {
      response = await postJson("/api/local/messages", outgoing.body);
    } catch {
      // network error or timeout: handled below like a 5xx
    }
    const refused = response && response.status >= 400 && response.status < 500;
    const refusal = refused ? await refusalText(response) : null;
    if (outgoing.session !== state.session) return; // the person was switched; that transcript is gone

    const retryable = !response || response.status === 503 || response.status >= 500;
    if (retryable && (outgoing.autoRetries || 0) < AUTO_RETRIES) {
      // Same body, same client_id: whichever attempt gets through is recorded once.
      outgoing.autoRetries = (outgoing.autoRetries || 0) + 1;
      const header = response && Number(response.headers.get("Retry-After"));
      const wait = Math.min(
        AUTO_RETRY_MAX_MS,
        (Number.isFinite(header) && header > 0 ? header * 1000 : 1000) * 2 ** (outgoing.autoRetries - 1),
      );
      setSendState(outgoing, "waiting");
      setTimeout(() => {
        if (outgoing.session === state.session) post(outgoing);
      }, wait);
      return;
    }
    if (response && response.ok) {
      setSendState(outgoing, "sent");
      if (!outgoing.remembered) {
        outgoing.remembered = true;
        rememberMine(outgoing.mine);
        state.placed.add(outgoing.mine.id); // it is on screen already
      }
    } else if (refused) {
      setSendState(outgoing, "refused");
      addSystemNote(refusal);
      if (outgoing.onRefused) outgoing.onRefused();
    } else {
      setSendState(outgoing, "failed");
    }
  }

  async function refusalText(response) {
    try {
      const body = await response.json();
      if (body && typeof body.error === "string" && body.error.trim()) return body.error;
    } catch {
      // not JSON: fall through to a generic note
    }
    return `Baton couldn't accept that (HTTP ${response.status}).`;
  }

  // ---------------------------------------------------------------- composer

  /** Characters as Python's len() counts them (code points), which is what the server checks. */
  function charCount(text) {
    return [...text].length;
  }

  function multilineAllowed() {
    return !state.input || state.input.multiline !== false;
  }

  function maxLength() {
    const max = state.input && state.input.max_length;
    return Number.isInteger(max) && max > 0 ? max : null;
  }

  function applyInputSpec(input) {
    state.input = input && typeof input === "object" ? input : null;
    els.composer.placeholder = (state.input && state.input.placeholder) || DEFAULT_PLACEHOLDER;
    els.composer.classList.toggle("multiline", Boolean(state.input && state.input.multiline));
    els.hint.textContent = multilineAllowed() ? "Enter to send, Shift+Enter for a new line" : "Enter to send";
    updateCounter();
    autoGrow();
  }

  function updateCounter() {
    const max = maxLength();
    els.counter.hidden = max == null;
    if (max == null) {
      els.limitNote.textContent = "";
      return;
    }
    const n = charCount(els.composer.value);
    els.counter.textContent = `${n.toLocaleString()} / ${max.toLocaleString()}`;
    els.counter.classList.toggle("over", n > max);
    if (n <= max) els.limitNote.textContent = "";
  }

  function autoGrow() {
    const c = els.composer;
    c.style.height = "auto";
    c.style.height = `${c.scrollHeight}px`; // CSS max-height caps it; beyond that it scrolls
  }

  function submitComposer() {
    if (!state.person) return;
    const text = els.composer.value;
    if (!text.trim()) return;
    const max = maxLength();
    const n = charCount(text);
    if (max != null && n > max) {
      els.limitNote.textContent =
        `That's ${n.toLocaleString()} characters and this answer can be up to ${max.toLocaleString()}. ` +
        "Could you shorten it a little?";
      return;
    }
    sendMessage({ text: text.trim() }, text.trim());
    els.composer.value = "";
    updateCounter();
    autoGrow();
  }

  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });

  els.composer.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms an IME composition (e.g. Japanese input) must not send.
    if (event.key !== "Enter" || event.isComposing) return;
    if (event.shiftKey && multilineAllowed()) return; // newline
    event.preventDefault();
    submitComposer();
  });

  els.composer.addEventListener("input", () => {
    updateCounter();
    autoGrow();
  });

  els.transcript.addEventListener("scroll", () => {
    if (isNearBottom()) els.jump.hidden = true;
  });
  els.jump.addEventListener("click", scrollToBottom);

  // ---------------------------------------------------------------- person picker

  function readStoredPerson() {
    try {
      return localStorage.getItem(STORAGE_KEY);
    } catch {
      return null; // storage can be disabled; the URL still remembers the choice
    }
  }

  function rememberPerson(id) {
    try {
      localStorage.setItem(STORAGE_KEY, id);
    } catch {
      // see readStoredPerson
    }
    const url = new URL(location.href);
    url.searchParams.set("person", id);
    history.replaceState(null, "", url);
  }

  function buildPicker(people) {
    const placeholder = make("option", null, "Choose a person…");
    placeholder.value = "";
    placeholder.disabled = true;
    placeholder.selected = true;
    els.person.replaceChildren(placeholder);

    const known = new Set(ROLE_GROUPS.map(([role]) => role));
    const groups = [...ROLE_GROUPS, ["", "Others"]];
    for (const [role, title] of groups) {
      const members = people
        .filter((p) => (role ? p.role === role : !known.has(p.role)))
        .sort((a, b) => String(a.name).localeCompare(String(b.name)));
      if (!members.length) continue;
      const optgroup = make("optgroup");
      optgroup.label = title;
      for (const p of members) {
        const option = make("option", null, p.team ? `${p.name} · ${p.team}` : p.name);
        option.value = String(p.id);
        option.title = p.email || "";
        optgroup.append(option);
      }
      els.person.append(optgroup);
    }
    els.person.disabled = false;
  }

  function selectPerson(id) {
    const person = state.people.get(id);
    if (!person || person === state.person) return;
    closeStream();
    state.session++;
    state.person = person;
    state.formats = makeFormats(person.timezone);
    state.seenIds.clear();
    state.latestBotId = -Infinity;
    state.groups.clear();
    state.live = null;
    state.placed.clear();
    state.lastBotId = null;
    delete els.transcript.dataset.ready;
    els.transcript.replaceChildren();
    els.jump.hidden = true;
    applyInputSpec(null);
    rememberPerson(id);
    els.person.value = id;
    els.composer.disabled = false;
    els.send.disabled = false;
    openStream();
  }

  els.person.addEventListener("change", () => selectPerson(els.person.value));

  async function start() {
    let people;
    try {
      const response = await fetch("/api/local/people", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      people = await response.json();
      if (!Array.isArray(people)) throw new Error("not a list");
    } catch {
      els.person.replaceChildren(make("option", null, "Couldn't load people"));
      addSystemNote("Couldn't load the list of people. Is Baton running? Reload the page to try again.");
      return;
    }
    for (const p of people) state.people.set(String(p.id), p);
    buildPicker(people);

    const fromUrl = new URLSearchParams(location.search).get("person");
    const initial = [fromUrl, readStoredPerson()].find((id) => id && state.people.has(id));
    if (initial) selectPerson(initial);
    else if (people.length) addSystemNote("Choose who you are in “Chatting as” to start.");
    else addSystemNote("There is nobody in this organisation yet.");
  }

  start();
})();
