// The kiosk page: live over /v1/events?kiosk=true (the server sends only the current kiosk
// person's data plus device events); this page also renders only that person's readings.
// Runs on the gateway's own browser (loopback: no token needed). No build step.
// Staff mode (PIN, search, start/end sessions) is in staff.js; it uses window.kiosk below.
"use strict";

// How long "Paired ✓" holds against a device list that has not seen the new bond yet.
const PAIRED_GRACE_MS = 60_000;

const STEPS = {
  pair: "Enter the passkey shown on the device",
  press_button: "Press the meter's Bluetooth button",
  measure: "Start a measurement on the cuff",
  step_on: "Step on the scale",
  wait: "Reading… keep the device close",
  done: "Done",
};
const KIND_NAMES = {
  glucose: "Glucose", blood_pressure: "Blood pressure", body: "Weight", ketone: "Ketone",
};
const MAX_READINGS = 12;

const state = {
  person: null, readings: new Map(), refreshTimer: null, loaded: false, paired: new Map(), passkeys: new Map(), pairMessages: new Map(),
};
const $ = (id) => document.getElementById(id);

// A kiosk that is not the gateway itself (a tablet on the clinic network) has no loopback
// exemption: open the page once as /#token=<token> (`edge-gateway token create --scope read`)
// and it keeps the token in this browser. Staff actions still need the staff PIN: a read
// token cannot start or end sessions by itself.
const TOKEN_KEY = "edge-gateway-token";
function kioskToken() {
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (fromHash) {
    window.localStorage.setItem(TOKEN_KEY, fromHash);
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return window.localStorage.getItem(TOKEN_KEY);
}
const TOKEN = kioskToken();

async function api(path, options = {}) {
  if (options.body && typeof options.body !== "string") options.body = JSON.stringify(options.body);
  const response = await fetch(path, {
    ...options,
    // X-Requested-With marks the page's own calls: the gateway lets tokenless loopback
    // requests change things only with it (or a JSON body), which other origins cannot send.
    headers: {
      "Content-Type": "application/json",
      "X-Requested-With": "edge-gateway-kiosk",
      ...(TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {}),
      ...(options.headers || {}),
    },
  });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    const error = new Error(typeof detail === "string" ? detail : "request refused");
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// ------------------------------------------------------------------ person (kiosk session)

async function loadPerson() {
  const { data } = await api("/v1/kiosk/sessions/current");
  const session = data[0] || null;
  const changed = (session && session.user_id) !== (state.person && state.person.user_id);
  state.person = session;
  // Only what the person needs: their first name (or the clinic's label), never an id.
  $("person-name").textContent = session ? (session.display_name || "Welcome") : "Nobody yet";
  $("person-hint").hidden = Boolean(session);
  $("checkin-form").hidden = Boolean(session);
  if (changed) {
    state.readings.clear();
    renderReadings();
    if (session) await loadReadings(false);
  }
  await loadUpload();
}

// ------------------------------------------------------------------ readings

function isMine(reading) {
  return state.person !== null && reading.user_id === state.person.user_id;
}

async function loadReadings(markFresh = true) {
  const person = state.person;
  if (!person) return;
  // The session's readings were stored after it started (measured time may be earlier).
  const params = new URLSearchParams({
    user_id: person.user_id, updated_since: person.started_at, limit: "1000",
  });
  const page = await api(`/v1/readings?${params}`);
  const fresh = new Set();
  for (const reading of page.data.filter(isMine)) { // never show anybody else's data
    if (markFresh && !state.readings.has(reading.id)) fresh.add(reading.id);
    state.readings.set(reading.id, reading);
  }
  renderReadings(fresh);
}

function formatValues(reading) {
  const v = reading.values || {};
  const n = (q, digits) => (q ? q.value.toFixed(digits) : "–");
  if (reading.kind === "glucose") return [n(v.glucose, 1), "mmol/L"];
  if (reading.kind === "ketone") return [n(v.ketone, 1), "mmol/L"]; // β-ketone, kept locally
  if (reading.kind === "blood_pressure") {
    const pulse = v.pulse ? `  ♥ ${n(v.pulse, 0)}` : "";
    return [`${n(v.systolic, 0)}/${n(v.diastolic, 0)}`, `mmHg${pulse}`];
  }
  if (reading.kind === "body") {
    const fat = v.body_fat_percentage ? `  ${n(v.body_fat_percentage, 1)} % fat` : "";
    return [n(v.body_mass, 1), `kg${fat}`];
  }
  return ["?", ""];
}

// A reading from another day shows its date too (a meter's memory holds days of readings).
function formatWhen(date) {
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  const day = date.toLocaleDateString([], { day: "numeric", month: "short" });
  return `${day}, ${time}`;
}

function renderReadings(fresh = new Set()) {
  const list = $("reading-list");
  const all = [...state.readings.values()]
    .sort((a, b) => b.start_date.localeCompare(a.start_date));
  const items = all.slice(0, MAX_READINGS);
  list.replaceChildren(...items.map((reading) => {
    const li = document.createElement("li");
    li.className = "reading" + (fresh.has(reading.id) ? " fresh" : "");
    li.dataset.id = reading.id;
    li.dataset.kind = reading.kind;
    const what = document.createElement("span");
    what.className = "what";
    const when = formatWhen(new Date(reading.start_date));
    what.textContent = `${KIND_NAMES[reading.kind] || reading.kind} · ${when}`;
    const [value, unit] = formatValues(reading);
    const valueEl = document.createElement("span");
    const big = document.createElement("span");
    big.className = "value";
    big.textContent = value;
    const small = document.createElement("span");
    small.className = "unit";
    small.textContent = unit;
    valueEl.append(big, small);
    li.append(what, valueEl);
    return li;
  }));
  if (all.length > items.length) {
    const more = document.createElement("li");
    more.className = "more";
    more.textContent = `+${all.length - items.length} more`;
    list.append(more);
  }
  $("no-readings").hidden = !state.loaded || items.length > 0;
}

// ------------------------------------------------------------------ devices and pairing

async function loadDevices() {
  const { data } = await api("/v1/devices");
  const visible = data.filter((d) => d.in_range || d.next_step === "pair");
  const template = $("device-card");
  $("device-list").replaceChildren(...visible.map((device) => {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.address = device.address;
    card.dataset.step = device.next_step;
    card.querySelector(".device-name").textContent =
      `${KIND_NAMES[device.kind] || "Device"} · ${device.name || device.address}`;
    card.querySelector(".step").textContent = STEPS[device.next_step] || device.next_step;
    const form = card.querySelector("form.pair");
    const pairedAt = state.paired.get(device.address);
    // Just paired here: the device list may still say "pair" until the gateway has refreshed
    // the bond from BlueZ, so the confirmation outlives a re-render for a while.
    const justPaired = pairedAt !== undefined && Date.now() - pairedAt < PAIRED_GRACE_MS;
    if (justPaired || (pairedAt !== undefined && device.next_step !== "pair")) {
      if (device.next_step === "pair") card.querySelector(".step").textContent = STEPS.wait;
      showPaired(form);  // a re-render (device events) keeps the confirmation
    } else if (device.next_step === "pair") {
      state.paired.delete(device.address);
      form.hidden = false;
      // Device events redraw the list: what a person typed, and the last answer, survive it.
      const input = form.elements.passkey;
      input.value = state.passkeys.get(device.address) || "";
      input.addEventListener("input", () => state.passkeys.set(device.address, input.value));
      form.querySelector(".pair-result").textContent = state.pairMessages.get(device.address) || "";
      form.addEventListener("submit", (event) => pair(event, device.address, form));
    }
    return card;
  }));
  $("devices-loading").hidden = true;
  $("no-devices").hidden = visible.length > 0;
}

function showPaired(form) {
  form.hidden = false;
  form.querySelector("label").hidden = true;
  form.querySelector("button").hidden = true;
  form.querySelector(".pair-result").textContent = "Paired ✓";
}

async function pair(event, address, form) {
  event.preventDefault();
  const say = (text) => {
    state.pairMessages.set(address, text);
    // The card may have been redrawn while the request ran: write to the one on screen.
    const card = document.querySelector(`#device-list li[data-address="${address}"]`);
    for (const el of new Set([form.querySelector(".pair-result"), card?.querySelector(".pair-result")])) {
      if (el) el.textContent = text;
    }
  };
  const typed = form.elements.passkey.value || state.passkeys.get(address) || "";
  const passkey = Number.parseInt(typed, 10);
  say("Pairing…");
  try {
    const outcome = await api(`/v1/devices/${encodeURIComponent(address)}/pair`, {
      method: "POST", body: JSON.stringify({ passkey }),
    });
    if (outcome.paired) {
      // The passkey step is over: never "Enter the passkey" next to "Paired ✓".
      form.closest(".card").querySelector(".step").textContent = STEPS.wait;
      state.paired.set(address, Date.now());
      state.passkeys.delete(address);
      state.pairMessages.delete(address);
      showPaired(form);
      soon(loadDevices);  // the card may have been redrawn meanwhile: draw it again
    } else {
      say(outcome.message);
    }
  } catch (error) {
    say(error.message);
  }
}

// ------------------------------------------------------------------ upload state

async function loadUpload() {
  const el = $("upload-state");
  if (!state.person) {
    el.textContent = "—";
    el.dataset.state = "";
    return;
  }
  let sync;
  try {
    sync = await api(`/v1/users/${encodeURIComponent(state.person.user_id)}/sync`);
  } catch (_) {
    return;
  }
  const queued = sync.streams.reduce((n, s) => n + s.queued, 0);
  const failed = sync.streams.some((s) => s.status === "error") || sync.dead_letters > 0;
  if (sync.paused) {
    el.textContent = "Upload paused";
    el.dataset.state = "waiting";
  } else if (failed) {
    el.textContent = "Upload problem — staff will check";
    el.dataset.state = "error";
  } else if (queued > 0) {
    el.textContent = `Uploading… ${queued} waiting`;
    el.dataset.state = "waiting";
  } else if (state.readings.size > 0) {
    el.textContent = "All uploaded ✓";
    el.dataset.state = "done";
  } else {
    el.textContent = "Nothing to upload yet";
    el.dataset.state = "";
  }
}

// ------------------------------------------------------------------ live events

function soon(fn) {
  // Coalesce bursts of events (advertisements) into one refresh.
  clearTimeout(fn.timer);
  fn.timer = setTimeout(() => fn().catch(console.error), 150);
}

function onEvent(envelope) {
  const type = envelope.event_type;
  if (/^(daily|historical)\.data\./.test(type)) {
    // Junction data events carry samples (or, historical, only a window): read the
    // person's readings back from the API, which has everything the list shows.
    soon(loadReadings);
    soon(loadUpload);
  } else if (type.startsWith("gateway.device.") || type.startsWith("gateway.pairing.")) {
    soon(loadDevices);
  } else if (type.startsWith("gateway.kiosk.")) {
    soon(loadPerson);
  } else if (type.startsWith("gateway.sync.")) {
    soon(loadUpload);
  } else if (type === "gateway.events.gap") {
    soon(refreshAll);
  }
}

async function refreshAll() {
  await loadPerson();
  await loadDevices();
  state.loaded = true;  // "nothing yet" hints only once the first answers are in
  renderReadings();
}

function connect() {
  const link = $("link");
  // An EventSource cannot send headers: the token goes as access_token (Human API's way).
  const query = new URLSearchParams({ kiosk: "true", ...(TOKEN ? { access_token: TOKEN } : {}) });
  const source = new EventSource(`/v1/events?${query}`);
  source.onopen = () => {
    link.dataset.state = "live";
    link.textContent = "Live";
  };
  source.onerror = () => {
    link.dataset.state = "lost";
    link.textContent = "Reconnecting…";
  };
  source.onmessage = (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch (error) {
      console.error(error);
    }
  };
}

// ------------------------------------------------------------------ check-in codes

async function checkIn(code) {
  const result = $("checkin-result");
  result.textContent = "Checking in…";
  try {
    await api("/v1/kiosk/checkins/redeem", { method: "POST", body: { code } });
    result.textContent = "";
    await loadPerson();
  } catch (error) {
    result.textContent = error.message;
  }
}

function checkInFromUrl() {
  // /?checkin=CODE (a QR code or the clinic's app opens it): use it once, then drop it
  // from the address bar so a reload cannot replay it.
  const code = new URLSearchParams(window.location.search).get("checkin");
  if (!code) return;
  window.history.replaceState(null, "", "/");
  checkIn(code).catch(console.error);
}

window.kiosk = { api, $, refreshAll, loadPerson, loadDevices, state, KIND_NAMES };

window.addEventListener("DOMContentLoaded", () => {
  $("checkin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("checkin-code");
    const code = input.value.trim();
    input.value = "";
    if (code) checkIn(code).catch(console.error);
  });
  connect();
  refreshAll().then(checkInFromUrl).catch(console.error);
  // Sessions expire on their own and upload state moves without events: look now and then.
  setInterval(() => refreshAll().catch(console.error), 15000);
});
