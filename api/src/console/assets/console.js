// Hookline console: small progressive enhancements. Every page works
// without this file; with it, secrets copy with one click, a group's events
// are selected at once, fields are checked as you type, delivery logs
// update while deliveries happen (and say when the server is out of
// reach), irreversible actions ask first, and Back shows current pages.
// Loaded from our own origin only (CSP).
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  // Copy buttons: <button data-copy="#target" data-copied="Copied">.
  function setupCopy() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var target = document.querySelector(button.getAttribute("data-copy"));
        if (!target) return;
        var text = target.textContent.trim();
        var status = document.getElementById(button.getAttribute("aria-describedby") || "");
        var done = function () {
          if (status) status.textContent = button.getAttribute("data-copied") || "";
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(done, function () { selectText(target); });
        } else {
          selectText(target);
        }
      });
    });
  }

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // "Select all" per event group.
  function setupGroups() {
    document.querySelectorAll("input[data-select-all]").forEach(function (all) {
      var group = all.getAttribute("data-select-all");
      var items = function () {
        return Array.prototype.slice.call(
          document.querySelectorAll('input[data-group="' + CSS.escape(group) + '"]'));
      };
      var sync = function () {
        var boxes = items();
        var on = boxes.filter(function (b) { return b.checked; }).length;
        all.checked = boxes.length > 0 && on === boxes.length;
        all.indeterminate = on > 0 && on < boxes.length;
      };
      all.addEventListener("change", function () {
        items().forEach(function (b) { b.checked = all.checked; });
        all.indeterminate = false;
      });
      items().forEach(function (b) { b.addEventListener("change", sync); });
      sync();
    });
  }

  // Inline validation with the API's own rules: <input data-validate="url">.
  function setupValidation() {
    document.querySelectorAll("input[data-validate]").forEach(function (input) {
      var field = input.getAttribute("data-validate");
      var out = document.getElementById(input.id + "-error");
      var seq = 0;
      var check = function () {
        if (!out) return;
        var value = input.value;
        if (value === "" && field === "secret") {
          out.textContent = "";
          input.removeAttribute("aria-invalid");
          return;
        }
        var mine = ++seq;
        fetch("/console/validate?field=" + encodeURIComponent(field) + "&value=" + encodeURIComponent(value),
              { headers: { "x-console-fetch": "1" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (res) {
            if (!res || mine !== seq) return;
            out.textContent = res.ok ? "" : res.message;
            if (res.ok) input.removeAttribute("aria-invalid");
            else input.setAttribute("aria-invalid", "true");
          })
          .catch(function () {});
      };
      input.addEventListener("change", check);
      input.addEventListener("blur", check);
    });
  }

  // Live parts: <tbody data-live="/console/...">, refreshed every 2 s while
  // the page is visible.
  function setupLive() {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var url = el.getAttribute("data-live");
      var stopped = false;
      var tick = function () {
        if (stopped) return;
        if (document.hidden) { setTimeout(tick, 2000); return; }
        // "live": a refresh, not the user's activity (the session's idle
        // clock is not restarted by it).
        fetch(url, { headers: { "x-console-fetch": "live" }, credentials: "same-origin" })
          .then(function (r) {
            // The session ended (sign-out elsewhere, a revoked or expired
            // portal link, a restart): reloading shows why.
            if (r.status === 401) { stopped = true; window.location.reload(); return null; }
            offline(el, r.status >= 500);
            return r.ok ? r.text() : null;
          })
          .then(function (html) {
            if (html !== null && html !== undefined && html !== el.innerHTML) {
              el.innerHTML = html;
              el.setAttribute("data-refreshed", String(Date.now()));
            }
          })
          .catch(function () { offline(el, true); })
          .then(function () { if (!stopped) setTimeout(tick, 2000); });
      };
      setTimeout(tick, 2000);
    });
  }

  // While the server cannot be reached, say so above the live part (its
  // data-offline text), instead of leaving it silently stale.
  function offline(el, down) {
    var id = "offline-" + (el.id || "live");
    var note = document.getElementById(id);
    if (!down) { if (note) note.remove(); return; }
    if (note || !el.getAttribute("data-offline")) return;
    note = document.createElement("p");
    note.id = id;
    note.className = "notice warn";
    note.setAttribute("role", "status");
    note.textContent = el.getAttribute("data-offline");
    var anchor = el.closest(".table-wrap") || el;
    anchor.parentNode.insertBefore(note, anchor);
  }

  // Back and Forward show the console as it is now, not as it was: a page
  // the browser restores whole from its back/forward cache is loaded again
  // (a deleted subscription is not shown active, and what a page showed
  // once, a secret, a key or a link, is not shown again: the server then
  // shows the object's ordinary page). What is shown once is also removed
  // when its page is left.
  window.addEventListener("pagehide", function () {
    document.querySelectorAll("[data-shown-once]").forEach(function (el) {
      el.textContent = "";
    });
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });

  // Forms whose action cannot be undone ask first (data-confirm="…"), and
  // a form that changes something is sent once: a double click would make
  // a second subscription (refused as a duplicate), or lose the page that
  // shows the first one's secret.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form || !form.getAttribute) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post") return;
    if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
  });

  onReady(function () {
    setupCopy();
    setupGroups();
    setupValidation();
    setupLive();
  });
})();
