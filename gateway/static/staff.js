// Staff mode on the kiosk page: unlock with the staff PIN, find a person, start their
// session (optionally on one device), end it. The gateway checks the PIN and counts wrong
// tries (POST /v1/kiosk/staff/unlock); every staff call carries the grant it returns as
// X-Kiosk-Staff. After a start or an end, or a while without a touch, staff mode locks and
// the patient view comes back with nothing of the staff screen left in the page.
"use strict";

(() => {
  const { api, $, loadPerson, KIND_NAMES } = window.kiosk;
  const STAFF_HEADER = "X-Kiosk-Staff";
  const PIN_SCREEN_S = 60;  // the PIN screen closes by itself if nobody types
  const staff = { token: null, validS: PIN_SCREEN_S, timer: null, picked: null, session: null };

  function touch() {
    clearTimeout(staff.timer);
    staff.timer = setTimeout(() => lock().catch(console.error), staff.validS * 1000);
  }

  function staffApi(path, options = {}) {
    touch();
    return api(path, { ...options, headers: { [STAFF_HEADER]: staff.token || "" } });
  }

  function show(open) {
    $("staff").hidden = !open;
    $("patient").hidden = open;
    $("staff-open").hidden = open;
  }

  function open() {
    staff.validS = PIN_SCREEN_S;
    $("pin-form").hidden = false;
    $("staff-panel").hidden = true;
    $("pin-result").textContent = "";
    show(true);
    $("pin").focus();
    touch();
  }

  async function lock() {
    clearTimeout(staff.timer);
    const token = staff.token;
    staff.token = null;
    staff.picked = null;
    staff.session = null;
    // Nothing from the staff screen stays in the page.
    $("pin").value = "";
    $("search").value = "";
    $("people").replaceChildren();
    $("no-people").hidden = true;
    $("start-form").hidden = true;
    $("picked-name").textContent = "";
    $("staff-current-name").textContent = "";
    $("staff-result").textContent = "";
    show(false);
    if (token) {
      try {
        await api("/v1/kiosk/staff/lock", { method: "POST", headers: { [STAFF_HEADER]: token } });
      } catch (error) {
        console.error(error);  // the grant lapses on the gateway anyway
      }
    }
  }

  async function unlock(event) {
    event.preventDefault();
    const pin = $("pin").value;
    $("pin").value = "";
    const result = $("pin-result");
    result.textContent = "Checking…";
    try {
      const grant = await api("/v1/kiosk/staff/unlock", { method: "POST", body: { pin } });
      staff.token = grant.staff_token;
      staff.validS = grant.valid_s;
      result.textContent = "";
      $("pin-form").hidden = true;
      $("staff-panel").hidden = false;
      touch();
      await Promise.all([showCurrent(), loadDevicePick()]);
      $("search").focus();
    } catch (error) {
      result.textContent = error.message;
      result.dataset.status = String(error.status || "");
    }
  }

  async function showCurrent() {
    const { data } = await staffApi("/v1/kiosk/sessions/current");
    staff.session = data[0] || null;
    $("staff-current").hidden = !staff.session;
    if (staff.session) {
      $("staff-current-name").textContent = staff.session.name || staff.session.user_id;
    }
  }

  async function loadDevicePick() {
    const { data } = await staffApi("/v1/devices");
    const select = $("device-pick");
    const options = data.map((device) => {
      const option = document.createElement("option");
      option.value = device.address;
      option.textContent =
        `${KIND_NAMES[device.kind] || "Device"} · ${device.name || device.address}`;
      return option;
    });
    select.replaceChildren(select.options[0], ...options);
  }

  async function search(event) {
    event.preventDefault();
    const q = $("search").value.trim();
    if (!q) return;
    try {
      const { data } = await staffApi(`/v1/kiosk/staff/people?${new URLSearchParams({ q })}`);
      $("people").replaceChildren(...data.map((person) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.userId = person.user_id;
        button.textContent = person.name || person.user_id;
        if (person.client_user_id) {
          const id = document.createElement("span");
          id.className = "client-id";
          id.textContent = person.client_user_id;
          button.append(id);
        }
        button.addEventListener("click", () => pick(person));
        li.append(button);
        return li;
      }));
      $("no-people").hidden = data.length > 0;
      $("staff-result").textContent = "";
    } catch (error) {
      await failed(error);
    }
  }

  function pick(person) {
    touch();
    staff.picked = person;
    $("picked-name").textContent = person.name || person.user_id;
    $("start-form").hidden = false;
  }

  async function start(event) {
    event.preventDefault();
    if (!staff.picked) return;
    const device = $("device-pick").value;
    const body = { user_id: staff.picked.user_id, ...(device ? { device } : {}) };
    try {
      await staffApi("/v1/kiosk/sessions", { method: "POST", body });
      await lock();
      await loadPerson();
    } catch (error) {
      await failed(error);
    }
  }

  async function end() {
    if (!staff.session) return;
    try {
      await staffApi(`/v1/kiosk/sessions/${staff.session.id}`, { method: "DELETE" });
      await lock();
      await loadPerson();
    } catch (error) {
      await failed(error);
    }
  }

  async function failed(error) {
    if (error.status === 403) {
      await lock();  // the grant lapsed on the gateway: back to the patient view
      return;
    }
    $("staff-result").textContent = error.message;
  }

  window.addEventListener("DOMContentLoaded", () => {
    $("staff-open").addEventListener("click", open);
    for (const button of document.querySelectorAll(".staff-close")) {
      button.addEventListener("click", () => lock().catch(console.error));
    }
    $("pin-form").addEventListener("submit", (event) => unlock(event).catch(console.error));
    $("search-form").addEventListener("submit", (event) => search(event).catch(console.error));
    $("start-form").addEventListener("submit", (event) => start(event).catch(console.error));
    $("end-session").addEventListener("click", () => end().catch(console.error));
  });
})();
